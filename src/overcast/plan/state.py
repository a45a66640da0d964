"""The kernel vocabulary: desired or observed kernel state as frozen records,
and the changes that turn one into the other.  Pure data, no I/O.

Every record type belongs to one kernel subsystem (see
:mod:`overcast.plan.subsystems`), which defines it.  A record is a frozen,
ordered dataclass with ``render()`` (one normalized line) and ``devices()``
(the kernel devices it concerns, so a refused change can be pinned on the
ports that need those devices).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

Action = Literal["create", "update", "delete"]


class Record(Protocol):
    def render(self) -> str: ...

    def devices(self) -> frozenset[str]: ...


R = TypeVar("R")


@dataclass(frozen=True)
class KernelState:
    """Desired or observed state: a set of records, read by record type.

    ``devices_present`` (observed) names the workload devices (``tap*``) that
    exist; ``devices_up`` those of them that are administratively up.  In a
    desired state both are empty.  ``state[Bridge]`` is the sorted tuple of
    the state's bridges, and so on for every record type.
    """

    records: frozenset[Any] = frozenset()
    devices_present: frozenset[str] = frozenset()
    devices_up: frozenset[str] = frozenset()
    # observed: subsystems whose part of the kernel could not be read (name -> why);
    # the diff leaves them alone instead of taking "unread" for "empty"
    unobserved: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    _groups: dict[type, tuple[Any, ...]] = field(
        default_factory=dict, init=False, compare=False, repr=False, hash=False)

    @classmethod
    def of(cls, *groups: Iterable[Any], devices_present: Iterable[str] = (),
           devices_up: Iterable[str] = ()) -> KernelState:
        """A state from any number of iterables of records (of any types)."""
        return cls(frozenset(r for group in groups for r in group),
                   frozenset(devices_present), frozenset(devices_up))

    def __getitem__(self, kind: type[R]) -> tuple[R, ...]:
        found = self._groups.get(kind)
        if found is None:
            found = self._groups[kind] = tuple(sorted(r for r in self.records if type(r) is kind))
        return found

    def _of(self, kind: type) -> tuple[Record, ...]:
        return self[kind]

    def without_devices(self) -> KernelState:
        """The same records without the device inventory (to compare an
        observed state with a desired one)."""
        return KernelState(self.records)

    def render(self, order: Sequence[type]) -> str:
        """Normalized text, one record per line: record types in ``order``
        (the registry's), each type's records sorted."""
        lines: list[str] = []
        for kind in order:
            lines += [record.render() for record in self._of(kind)]
        lines += [f"device {name}" for name in sorted(self.devices_present)]
        return "\n".join(lines) + ("\n" if lines else "")


@dataclass(frozen=True, slots=True)
class Change:
    """One kernel operation.  ``obj`` is the desired record (create/update) or
    the observed one (delete); ``old`` is the observed record of an update."""

    op: Action
    obj: Any
    old: Any = None

    def render(self) -> str:
        """One line: the record's, or what changes (a record with
        ``delta(old)``: the firewall's ruleset, too big to print whole)."""
        if hasattr(self.obj, "delta"):
            if self.op == "delete":  # from it to nothing
                return f"delete {type(self.obj)().delta(self.obj)}"
            return f"{self.op} {self.obj.delta(self.old)}"
        return f"{self.op} {self.obj.render()}"


@dataclass(frozen=True, slots=True)
class ApplyError:
    """One change the kernel refused, and its reason (``message``, one line
    for the log and a port's status).  ``refused``: when the change was
    refused only in part, the API objects whose part the kernel refused,
    each with its own line (``(object id, "<kind> <id>: <why>")``, sorted
    by id); empty when the change was refused whole."""

    change: Change
    message: str
    refused: tuple[tuple[str, str], ...] = ()

    def render(self) -> str:
        return f"{self.change.render()}: {self.message}"
