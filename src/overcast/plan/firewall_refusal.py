"""A refused firewall batch, narrowed to the API objects that cause it.

The kernel refuses an nft batch as a whole.  To report the refusal on the
ports it concerns and apply everything else, the subsystem splits the
change into groups, one per API object (the comment of its elements: a
security group rule, a port, a network), and tries them in atomic trial
batches, halving a refused part until the refused groups are alone
(:func:`bisect`): with k refused groups among n, at most 2·k·log2(n) + 1
trials, and every trial that passes is applied, all or nothing.

The refusal (:class:`PartlyRefused`) carries the refused objects as data,
each with its line ``<kind> <id>: <the kernel's first line>``
(:meth:`PartlyRefused.lines`, which ``ApplyError.refused`` keeps for the
port statuses); its message joins those lines for the log (:func:`describe`).
Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from overcast.plan.raw import KernelRefusal

PREFIX = "refused: "
SEPARATOR = " | "
LOCATION = re.compile(r"^\S+:\d+:\d+-\d+: ")
T = TypeVar("T")


class PartlyRefused(KernelRefusal):
    """Everything of the change was applied except the elements of the API
    objects in ``refused`` (object id -> (its kind, the kernel's reason))."""

    def __init__(self, refused: Mapping[str, tuple[str, str]]) -> None:
        self.refused = dict(refused)
        super().__init__(describe(refused))

    def lines(self) -> tuple[tuple[str, str], ...]:
        """(object id, ``<kind> <id>: <why>``) per refused object, by id."""
        return tuple((id_, line(id_, kind, why)) for id_, (kind, why) in sorted(self.refused.items()))


def bisect(groups: Sequence[tuple[str, T]], attempt: Callable[[list[T]], str | None]) -> dict[str, str]:
    """The ids of the groups that ``attempt`` refuses alone, with its reason
    (``attempt`` applies a list of groups atomically and returns None, or
    refuses all of them and returns why)."""
    refused: dict[str, str] = {}
    stack = [list(groups)]
    while stack:
        part = stack.pop()
        if not part:
            continue
        why = attempt([g for _, g in part])
        if why is None:
            continue
        if len(part) == 1:
            refused[part[0][0]] = why
            continue
        mid = len(part) // 2
        stack += [part[mid:], part[:mid]]
    return refused


def describe(refused: Mapping[str, tuple[str, str]]) -> str:
    """``refused: security group rule <id>: <why> | port <id>: <why>``."""
    return PREFIX + SEPARATOR.join(line(id_, kind, why) for id_, (kind, why) in sorted(refused.items()))


def line(id_: str, kind: str, why: str) -> str:
    """One refused object as a port's status names it."""
    return f"{kind} {id_}: {_line(why)}"


def _line(why: str) -> str:
    """The kernel's message on one line, without our separator and without
    libnftables' location of JSON input (``internal:0:0-0: ``)."""
    first = next((ln.strip() for ln in why.splitlines() if ln.strip()), why)
    return LOCATION.sub("", first).replace(SEPARATOR, " / ")
