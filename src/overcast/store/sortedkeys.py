"""A sorted set of keys for the stores' in-memory indexes.

One flat sorted list costs a move of every later element per insert or
delete, so W inserts into a list of S keys cost O(W·S): a transaction of
thousands of new keys (a bulk create) grew with its own square.  Here the
keys sit in sorted buckets of at most ``2 * LOAD`` (the layout of
``sortedcontainers.SortedList``): an insert or delete moves at most one
bucket, a range read bisects the bucket maxima and then reads only the
buckets it covers.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator

LOAD = 256  # a bucket splits past twice this


class SortedKeys:
    """Distinct strings in sorted order; the caller never adds one twice."""

    __slots__ = ("_buckets", "_maxes", "_len")

    def __init__(self, keys: Iterable[str] = ()) -> None:
        ordered = sorted(set(keys))
        self._buckets = [ordered[i : i + LOAD] for i in range(0, len(ordered), LOAD)]
        self._maxes = [b[-1] for b in self._buckets]
        self._len = len(ordered)

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[str]:
        for bucket in self._buckets:
            yield from bucket

    def add(self, key: str) -> None:
        buckets, maxes = self._buckets, self._maxes
        self._len += 1
        if not buckets:
            buckets.append([key])
            maxes.append(key)
            return
        i = min(bisect.bisect_left(maxes, key), len(maxes) - 1)
        bucket = buckets[i]
        bisect.insort(bucket, key)
        maxes[i] = bucket[-1]
        if len(bucket) > 2 * LOAD:
            buckets[i : i + 1] = [bucket[:LOAD], bucket[LOAD:]]
            maxes[i : i + 1] = [bucket[LOAD - 1], bucket[-1]]

    def discard(self, key: str) -> None:
        maxes = self._maxes
        i = bisect.bisect_left(maxes, key)
        if i == len(maxes):
            return
        bucket = self._buckets[i]
        j = bisect.bisect_left(bucket, key)
        if j == len(bucket) or bucket[j] != key:
            return
        del bucket[j]
        self._len -= 1
        if bucket:
            maxes[i] = bucket[-1]
        else:
            del self._buckets[i]
            del maxes[i]

    def between(self, start: str, end: str) -> list[str]:
        """The keys ``k`` with ``start <= k < end``, in order."""
        buckets, maxes = self._buckets, self._maxes
        out: list[str] = []
        i = bisect.bisect_left(maxes, start)
        while i < len(buckets):
            bucket = buckets[i]
            lo = bisect.bisect_left(bucket, start) if bucket[0] < start else 0
            if bucket[-1] < end:
                out.extend(bucket[lo:])
            else:
                out.extend(bucket[lo : bisect.bisect_left(bucket, end, lo)])
                break
            i += 1
        return out
