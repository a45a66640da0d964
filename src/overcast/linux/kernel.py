"""The Kernel seam: observe the owned state, apply changes.

Two implementations keep the same contract: :class:`overcast.linux.netlink.
NetlinkKernel` (the real kernel, current network namespace) and
:class:`overcast.linux.fake.FakeKernel` (in memory, for tests).

What ``observe()`` returns:

* bridges and VXLAN devices that Overcast owns (owned name and mark);
* an :class:`Attachment` for every workload device (``tap*``) and every owned
  device, with its master ("" if none), MTU and up flag;
* FDB entries (with a destination) on owned VXLAN devices;
* ``devices_present`` / ``devices_up``: the workload devices that exist / are up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from overcast.linux.reconcile import Change, diff
from overcast.linux.records import KernelState


@dataclass(frozen=True, slots=True)
class ApplyError:
    """One change the kernel refused, and its reason."""

    change: Change
    message: str

    def render(self) -> str:
        return f"{self.change.render()}: {self.message}"


class Kernel(Protocol):
    def observe(self) -> KernelState: ...

    def apply(self, changes: Sequence[Change]) -> list[ApplyError]:
        """Apply in order; a refused change is reported and the rest still tried."""
        ...


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    changes: tuple[Change, ...]
    errors: tuple[ApplyError, ...]


def reconcile(kernel: Kernel, desired: KernelState) -> ReconcileResult:
    """Observe, diff, apply: one full resync pass (never flushes)."""
    changes = diff(desired, kernel.observe())
    errors = kernel.apply(changes) if changes else []
    return ReconcileResult(tuple(changes), tuple(errors))
