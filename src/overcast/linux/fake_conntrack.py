"""FakeConntrack: conntrack entries in memory, for the non-root tests of the
firewall's sweep.  The same contract as :class:`overcast.linux.conntrack.
Conntrack`: a dump returns the entries of the zones asked for only, a
delete removes an entry by its original tuple in its zone (one already gone
is skipped).  It counts the zones dumped, so a test sees that a change
removing nothing reads nothing, and fails on demand (``failures``: each
dump raises the next one), as a kernel that times out or sends a malformed
reply."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from overcast.plan.firewall_admits import Flow


class FakeConntrack:
    def __init__(self, entries: Iterable[Flow] = ()) -> None:
        self.entries: set[Flow] = set(entries)
        self.dumped: list[int] = []  # every zone dumped, in order
        self.failures: list[Exception] = []  # raised by the next dumps, in order

    def flows(self, zones: Collection[int]) -> list[Flow]:
        if self.failures:
            raise self.failures.pop(0)
        self.dumped += sorted(set(zones))
        return sorted(f for f in self.entries if f.zone in zones)

    def delete(self, flows: Sequence[Flow]) -> int:
        gone = set(flows) & self.entries
        self.entries -= gone
        return len(gone)
