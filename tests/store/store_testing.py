"""Helpers shared by the store tests (imported as a top-level module by pytest's rootdir path)."""

from __future__ import annotations

from collections.abc import Callable

from overcast.store import Event, Store, Watcher


class FakeClock:
    """A settable clock, injected into the stores so leases expire without sleeping."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


StoreFactory = Callable[..., Store]


def drain(w: Watcher, timeout: float = 0.05) -> list[Event]:
    """Every event the watcher has, until it stays quiet for ``timeout``."""
    out: list[Event] = []
    while batch := w.next_batch(timeout):
        out.extend(batch)
    return out
