"""What a kernel subsystem is: its record types, its diff rule, its observe
rule and its apply, in one value (see ``docs/subsystems.md``).

Pure: a subsystem reads rows through :class:`overcast.plan.raw.KernelRows`
and writes through :class:`overcast.plan.raw.KernelIO`, both injected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from overcast.plan.raw import KernelIO, KernelRows
from overcast.plan.state import Change, KernelState


@dataclass
class DiffContext:
    """One diff in progress: the subsystems add changes in registry order,
    so later ones see what earlier ones decided (``gone``)."""

    desired: KernelState
    observed: KernelState
    deletes: list[Change] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)  # devices deleted or recreated by this diff

    def delete(self, obj: Any) -> None:
        self.deletes.append(Change("delete", obj))

    def put(self, obj: Any, old: Any) -> None:
        self.changes.append(Change("create" if old is None else "update", obj, old))


@dataclass(frozen=True)
class Subsystem:
    """One kernel subsystem.

    ``kinds``: its record types, in creation order (deletes go in reverse);
    ``diff``: adds the changes that turn ``observed`` into ``desired`` for
    its kinds; ``observe``: its records from one read of the kernel (the same
    rule for the fake and the driver); ``apply``: one of its changes through
    the write primitives (raises on refusal).
    """

    name: str
    kinds: tuple[type, ...]
    diff: Callable[[DiffContext], None]
    observe: Callable[[KernelRows], Iterable[Any]]
    apply: Callable[[KernelIO, Change], None]
