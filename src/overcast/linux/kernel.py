"""The Kernel seam: observe the owned state, apply changes.

Two implementations keep the same contract: :class:`overcast.linux.netlink.
NetlinkKernel` (the real kernel, current network namespace) and
:class:`overcast.linux.fake.FakeKernel` (in memory, for tests).  Both run the
registered subsystems' own observe rules and apply code
(:mod:`overcast.plan.diff`) over their rows and primitives.

What ``observe()`` returns, subsystem by subsystem: bridges and VXLAN devices
that Overcast owns (owned name and mark); an attachment for every workload
device (``tap*``) and every owned device, with its master ("" if none), MTU,
up and IPv6 flags; FDB entries (with a destination) on owned VXLAN devices;
and ``devices_present`` / ``devices_up``: the workload devices that exist /
are up.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol

from overcast.plan.firewall_admits import Flow
from overcast.plan.state import ApplyError, Change, KernelState


class Kernel(Protocol):
    def observe(self, fresh: bool = False) -> KernelState:
        """A snapshot of the owned state (``fresh``: read everything now, no
        listing reused even when the kernel says nothing changed)."""
        ...

    def apply(self, changes: Sequence[Change]) -> list[ApplyError]:
        """Apply in order; a refused change is reported and the rest still tried."""
        ...

    def conntrack_flows(self, zones: Collection[int]) -> list[Flow]:
        """The conntrack entries of ``zones`` (only those: never another zone's)."""
        ...

    def conntrack_delete(self, flows: Sequence[Flow]) -> int:
        """Delete these entries (by original tuple and zone); how many went."""
        ...

    def nft(self, commands: list[dict[str, Any]]) -> None:
        """One libnftables JSON batch (the sweep's ``closed`` set elements)."""
        ...
