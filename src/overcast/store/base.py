"""The store interface: a revisioned key/value store with watch and leases.

Shaped after etcd v3 so that an etcd backend fits behind it unchanged:

* every successful write transaction advances one global ``revision``;
* each key carries ``create_revision``, ``mod_revision``, ``version`` and an
  optional ``lease``;
* ``txn`` evaluates all ``Compare``s atomically and then applies either the
  ``success`` or the ``failure`` operations;
* ``watch(prefix, start_revision)`` replays every event with revision >=
  ``start_revision`` in order, then follows new ones; a watcher whose start
  lies before the compaction point gets :class:`CompactedError` and must
  resync from a full ``range`` read;
* leases expire ``ttl`` seconds after their last keep-alive and take the keys
  attached to them along (as delete events).

Keys are ``str``; values are ``bytes``.  Nothing above this module knows which
backend it runs on.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Literal

CompareTarget = Literal["version", "create", "mod", "value"]
CompareOp = Literal["==", "!=", "<", ">"]


class StoreError(Exception):
    """Base class of store errors."""


class CompactedError(StoreError):
    """A watch asked for history that compaction already removed."""

    def __init__(self, requested: int, compact_revision: int) -> None:
        super().__init__(
            f"revision {requested} is compacted (history starts at {compact_revision}); "
            "resync from a full read"
        )
        self.requested = requested
        self.compact_revision = compact_revision


class LeaseNotFound(StoreError):
    """The lease does not exist (never granted, revoked or expired)."""


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Event:
    type: Literal["put", "delete"]
    key: str
    value: bytes  # b"" for deletes
    revision: int  # revision of the transaction that made the event


@dataclass(frozen=True, slots=True)
class Compare:
    """Compare ``target`` of ``key`` (or every key in [key, range_end)) with ``value``.

    A missing key has version, create and mod equal to 0, and a ``value``
    compare on it never holds.  With ``range_end``, the compare holds when it
    holds for every existing key in the range; an empty range is judged like a
    missing key (so ``mod < N`` holds, ``create > 0`` does not), as in etcd.
    """

    key: str
    target: CompareTarget
    op: CompareOp
    value: int | bytes
    range_end: str | None = None


@dataclass(frozen=True, slots=True)
class Put:
    key: str
    value: bytes
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Delete:
    key: str
    range_end: str | None = None  # delete [key, range_end) when given


Op = Put | Delete


@dataclass(frozen=True, slots=True)
class TxnResult:
    succeeded: bool
    revision: int  # store revision after the transaction (unchanged if nothing was written)


@dataclass(slots=True)
class RangeResult:
    kvs: list[KeyValue] = field(default_factory=list)
    revision: int = 0  # the store revision at which the read was taken


def prefix_end(prefix: str) -> str:
    """The smallest key greater than every key that starts with ``prefix``."""
    if not prefix:
        return "\U0010ffff"
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class Watcher(abc.ABC):
    """An ordered stream of events under a prefix."""

    @abc.abstractmethod
    def next_batch(self, timeout: float) -> list[Event]:
        """Events not yet returned, oldest first; waits up to ``timeout`` seconds
        for at least one.  Returns [] on timeout.  Raises CompactedError if the
        history it needs is gone."""

    @abc.abstractmethod
    def close(self) -> None: ...


class Store(abc.ABC):
    """The one interface every layer above uses."""

    @abc.abstractmethod
    def get(self, key: str) -> KeyValue | None: ...

    @abc.abstractmethod
    def range(self, prefix: str) -> RangeResult:
        """All keys starting with ``prefix``, sorted by key, as one consistent snapshot."""

    @abc.abstractmethod
    def txn(
        self,
        compares: list[Compare],
        success: list[Op],
        failure: list[Op] | None = None,
    ) -> TxnResult:
        """If every compare holds apply ``success``, else ``failure``, atomically,
        all writes at one new revision.  As in etcd, a branch may not put one key
        twice nor put a key one of its deletes covers (StoreError), and a put with
        an unknown lease raises LeaseNotFound; nothing is written then."""

    @abc.abstractmethod
    def revision(self) -> int: ...

    @abc.abstractmethod
    def watch(self, prefix: str, start_revision: int,
              exclude: tuple[str, ...] = ()) -> Watcher:
        """Events for keys under ``prefix`` with revision >= ``start_revision``
        (``start_revision <= 0``: from the next revision on, as in etcd).  Raises
        CompactedError if ``start_revision`` is below the compaction point.
        Keys under a prefix of ``exclude`` are left out (in etcd: watches of
        the ranges between them)."""

    @abc.abstractmethod
    def compact(self, revision: int) -> None:
        """Forget history before ``revision`` (watchers from earlier fail); events
        of ``revision`` itself are kept.  StoreError if beyond the current revision."""

    @abc.abstractmethod
    def lease_grant(self, ttl: float) -> int: ...

    @abc.abstractmethod
    def lease_keepalive(self, lease: int) -> None:
        """Renew; raises LeaseNotFound if it expired or never existed."""

    @abc.abstractmethod
    def lease_revoke(self, lease: int) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    # Conveniences built on txn -------------------------------------------
    def put(self, key: str, value: bytes, lease: int = 0) -> int:
        return self.txn([], [Put(key, value, lease)]).revision

    def delete(self, key: str) -> int:
        return self.txn([], [Delete(key)]).revision
