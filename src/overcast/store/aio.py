"""asyncio edge of the store: a watch as an async iterator.

The store itself is synchronous (a pure core, thin edges); an event loop that
follows a watch waits in a worker thread, ``slice_s`` seconds at a time, so a
cancelled consumer stops within one slice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from overcast.store.base import Event, Store


async def watch_batches(
    store: Store, prefix: str, start_revision: int, *, slice_s: float = 0.25
) -> AsyncIterator[list[Event]]:
    """Yield batches of events under ``prefix`` from ``start_revision`` on, forever.
    Raises CompactedError like ``Store.watch`` does."""
    watcher = await asyncio.to_thread(store.watch, prefix, start_revision)
    try:
        while True:
            batch = await asyncio.to_thread(watcher.next_batch, slice_s)
            if batch:
                yield batch
    finally:
        watcher.close()
