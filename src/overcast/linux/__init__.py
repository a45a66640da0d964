"""overcast.linux: the only code that touches the kernel.

Exports the ``Kernel`` protocol and ``FakeKernel`` (in memory, the same
subsystem code over rows it keeps itself).  The kernel vocabulary (records,
``KernelState``, ``Change``, ``ApplyError``) and the subsystems are in
:mod:`overcast.plan`.  The real drivers are imported from their modules so
that importing this package does no I/O:
``overcast.linux.netlink.NetlinkKernel`` (reads through the raw dump reader
``overcast.linux.rtnl``, writes FDB entries and attachments in batches through
``overcast.linux.rtnl_write``), ``overcast.linux.nft.Nftables``,
``overcast.linux.features.detect_features``, and the cheap device helpers in
``overcast.linux.devices`` (``list_tap_devices``, ``disable_ipv6``).
"""

from overcast.linux.fake import FakeKernel
from overcast.linux.kernel import Kernel

__all__ = ["FakeKernel", "Kernel"]
