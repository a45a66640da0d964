"""overcast.store: the revisioned key/value store with watch and leases.

Other layers import only what this module exports.
"""

from overcast.store.aio import watch_batches
from overcast.store.base import (
    CompactedError,
    Compare,
    Delete,
    Event,
    KeyValue,
    LeaseNotFound,
    Op,
    Put,
    RangeResult,
    Store,
    StoreError,
    TxnResult,
    Watcher,
    prefix_end,
)
from overcast.store.factory import open_store
from overcast.store.memory import MemoryStore
from overcast.store.sqlite import SqliteStore
from overcast.store.stm import ConflictError, StmTxn, dump_json, transact, transact_rev

__all__ = [
    "CompactedError",
    "Compare",
    "ConflictError",
    "Delete",
    "Event",
    "KeyValue",
    "LeaseNotFound",
    "Op",
    "MemoryStore",
    "Put",
    "RangeResult",
    "SqliteStore",
    "StmTxn",
    "Store",
    "StoreError",
    "TxnResult",
    "Watcher",
    "dump_json",
    "open_store",
    "prefix_end",
    "transact",
    "transact_rev",
    "watch_batches",
]
