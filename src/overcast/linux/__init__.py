"""overcast.linux: the only code that touches the kernel.

Exports: the records (``Bridge``, ``Vxlan``, ``Attachment``, ``FdbEntry``,
``KernelState``), ``Change`` and ``diff`` (pure), the ``Kernel`` protocol with
``ApplyError``/``reconcile``, ``FakeKernel`` (in memory).  The real drivers
are imported from their modules so that importing this package does no I/O:
``overcast.linux.netlink.NetlinkKernel`` (reads through the raw dump reader
``overcast.linux.rtnl``, writes FDB entries and attachments in batches through
``overcast.linux.rtnl_write``), ``overcast.linux.nft.Nftables``,
``overcast.linux.features.detect_features``, and the cheap device helpers in
``overcast.linux.devices`` (``list_tap_devices``, ``disable_ipv6``).
"""

from overcast.linux.fake import FakeKernel
from overcast.linux.kernel import ApplyError, Kernel, ReconcileResult, reconcile
from overcast.linux.reconcile import Change, diff
from overcast.linux.records import (
    Attachment,
    Bridge,
    FdbEntry,
    KernelState,
    Vxlan,
)

__all__ = [
    "ApplyError",
    "Attachment",
    "Bridge",
    "Change",
    "FakeKernel",
    "FdbEntry",
    "Kernel",
    "KernelState",
    "ReconcileResult",
    "Vxlan",
    "diff",
    "reconcile",
]
