"""What the driver knows of its nftables tables between two listings.

A listing of the owned tables (``NetlinkKernel.nft_rows``) is held as an
:class:`NftView`: the namespace's nftables generation and the owned tables'
handles when it was taken, when it was taken, its rows, and the records each
subsystem decoded from those rows alone (so a reused listing is not decoded
again: 10,000 elements took ~250 ms to decode).

After an apply whose nft batches were the only transactions since the view
(each batch found the generation the previous one left, and moved it by
exactly one), and none of whose changes of those subsystems was refused,
the kernel holds exactly "the view + those changes": :meth:`NftView.after`
gives that view without listing.  Anything else (a foreign commit, a
refused or partial change, a batch of a subsystem the view does not hold,
a table made or gone) drops it, and the next observe lists.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from overcast.plan.raw import FdbRow, KernelRows, Link, Netns, TcClass, TcFilter, TcQdisc
from overcast.plan.state import ApplyError, Change
from overcast.plan.subsystem import Subsystem


@dataclass
class NftView:
    """One listing, or what it became through our own batches.

    ``rows``: the listing's rows; None once batches of ours changed the
    tables since (then only ``records`` describe them).  ``listed_at``: when
    the listing was taken (monotonic), kept through our batches, so a view
    is never older than its bound counted from a real listing.
    ``records``: subsystem name -> the records it decoded from these rows
    alone (filled in by the observe that first decodes them).  ``comments``
    serve the batch's check that a table it marks is ours while the
    generation is still this one (no transaction since could have changed
    a table)."""

    generation: int
    handles: frozenset[str]
    listed_at: float
    rows: list[dict[str, Any]] | None
    records: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    # (family, name) -> comment of the owned tables at ``generation`` (None:
    # not known, e.g. after a batch of ours that deleted a table)
    comments: dict[tuple[str, str], str | None] | None = None

    def serves(self, generation: int | None, handles: frozenset[str], now: float,
               max_age: float) -> bool:
        """Whether the kernel still holds this view: no transaction since
        (same generation), the same owned tables, and not too old."""
        return generation == self.generation and handles == self.handles \
            and now - self.listed_at < max_age

    def after(self, generation: int, changes: Sequence[Change], errors: Sequence[ApplyError],
              subsystems: Sequence[Subsystem]) -> NftView | None:
        """The view once ``changes`` were applied by batches that moved the
        generation to ``generation`` and nothing else did; None when a
        change of a subsystem it holds was refused (even in part: the
        kernel's state is then known only by listing) or its old record is
        not the one held."""
        owner = {kind: sub.name for sub in subsystems for kind in sub.kinds}
        refused = {id(err.change) for err in errors}
        records = {name: list(held) for name, held in self.records.items()}
        for change in changes:
            held = records.get(owner.get(type(change.obj), ""))
            if held is None:
                continue  # not an nftables subsystem's change
            if id(change) in refused:
                return None
            gone = change.obj if change.op == "delete" else change.old
            if gone is not None:
                if gone not in held:
                    return None
                held.remove(gone)
            if change.op != "delete":
                held.append(change.obj)
        return replace(self, generation=generation, rows=None,
                       records={name: tuple(held) for name, held in records.items()})


class ReadProbe:
    """The rows one subsystem's observe is given: remembers whether it read
    anything besides the nftables rows (then its records cannot be kept with
    a listing)."""

    def __init__(self, rows: KernelRows) -> None:
        self._rows = rows
        self.read_nft = False
        self.read_other = False

    def link_rows(self) -> list[Link]:
        self.read_other = True
        return self._rows.link_rows()

    def fdb_rows(self, ifindexes: Collection[int]) -> list[FdbRow]:
        self.read_other = True
        return self._rows.fdb_rows(ifindexes)

    def nft_rows(self) -> list[dict[str, Any]]:
        self.read_nft = True
        return self._rows.nft_rows()

    def netns_rows(self) -> list[Netns]:
        self.read_other = True
        return self._rows.netns_rows()

    def tc_rows(self, devices: Collection[str]) -> list[TcQdisc | TcClass | TcFilter]:
        self.read_other = True
        return self._rows.tc_rows(devices)

    @property
    def nft_only(self) -> bool:
        return self.read_nft and not self.read_other
