"""The data plane's generic steps over the registered subsystems, all pure:
``observe`` (one read of the kernel -> KernelState, the same rule for the
fake and the driver), ``diff`` (desired, observed -> the minimal changes) and
``apply`` (changes -> the write primitives, one refusal per change).

Order: deletes first, later kinds before earlier ones (FDB entries before
their VXLAN device, attachments before bridges); then creates and updates,
earlier kinds first.  Within a kind, records sort by value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from overcast.plan.firewall_refusal import PartlyRefused
from overcast.plan.names import is_workload
from overcast.plan.raw import KernelIO, KernelRefusal, KernelRows
from overcast.plan.state import ApplyError, Change, KernelState
from overcast.plan.subsystem import DiffContext, Subsystem
from overcast.plan.subsystems import SUBSYSTEMS


def kinds(subsystems: Sequence[Subsystem] = SUBSYSTEMS) -> tuple[type, ...]:
    """Every record type, in creation order."""
    return tuple(kind for sub in subsystems for kind in sub.kinds)


def observe(rows: KernelRows, subsystems: Sequence[Subsystem] = SUBSYSTEMS) -> KernelState:
    """What the kernel holds of ours, from one read; plus the workload device
    inventory (which ``tap*`` devices exist, which are up).  A subsystem whose
    rows cannot be read (``KernelRefusal``) is named in ``unobserved`` and the
    others are still observed."""
    taps = [ln for ln in rows.link_rows() if is_workload(ln.name)]
    groups, unobserved = [], []
    for sub in subsystems:
        try:
            groups.append(sub.observe(rows))
        except KernelRefusal as exc:  # e.g. no libnftables: that subsystem only
            unobserved.append((sub.name, str(exc)))
    state = KernelState.of(*groups, devices_present=[t.name for t in taps],
                           devices_up=[t.name for t in taps if t.up])
    return replace(state, unobserved=tuple(unobserved)) if unobserved else state


def diff(desired: KernelState, observed: KernelState,
         subsystems: Sequence[Subsystem] = SUBSYSTEMS) -> list[Change]:
    """The changes that turn ``observed`` into ``desired`` (see module doc)."""
    d = DiffContext(desired, observed)
    skipped = {name for name, _ in observed.unobserved}
    for sub in subsystems:
        if sub.name not in skipped:
            sub.diff(d)
    rank = {kind: i for i, kind in enumerate(kinds(subsystems))}
    deletes = sorted(d.deletes, key=lambda c: (-rank[type(c.obj)], c.obj))
    changes = sorted(d.changes, key=lambda c: (rank[type(c.obj)], c.obj))
    return deletes + changes


Refusals = tuple[type[BaseException], ...]


def apply(io: KernelIO, changes: Sequence[Change], refusals: Refusals,
          describe: Callable[[BaseException], str] = str,
          on_change: Callable[[Change], None] | None = None,
          subsystems: Sequence[Subsystem] = SUBSYSTEMS) -> list[ApplyError]:
    """Apply ``changes`` in order through their subsystems.  An exception of
    a type in ``refusals`` refuses that change only (``describe`` says why);
    the rest are still tried; one refused only in part
    (:class:`PartlyRefused`) carries its refused objects.  ``on_change`` is told which change comes next
    (a batching writer pins its queued requests on it)."""
    owner: dict[type, Subsystem] = {kind: sub for sub in subsystems for kind in sub.kinds}
    errors: list[ApplyError] = []
    for change in changes:
        if on_change is not None:
            on_change(change)
        try:
            owner[type(change.obj)].apply(io, change)
        except refusals as exc:
            parts = exc.lines() if isinstance(exc, PartlyRefused) else ()
            errors.append(ApplyError(change, describe(exc), parts))
    return errors
