"""The asyncio watch iterator."""

from __future__ import annotations

import asyncio

import pytest

from overcast.store import CompactedError, Event, Store, watch_batches


def test_async_watch_follows_writes(store: Store) -> None:
    store.put("/a/0", b"old")

    async def main() -> list[Event]:
        got: list[Event] = []

        async def consume() -> None:
            async for batch in watch_batches(store, "/a/", 1, slice_s=0.05):
                got.extend(batch)
                if len(got) >= 3:
                    return

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)
        await asyncio.to_thread(store.put, "/b/x", b"")
        await asyncio.to_thread(store.put, "/a/1", b"1")
        await asyncio.to_thread(store.delete, "/a/0")
        await asyncio.wait_for(task, 5)
        return got

    assert asyncio.run(main()) == [
        Event("put", "/a/0", b"old", 1),
        Event("put", "/a/1", b"1", 3),
        Event("delete", "/a/0", b"", 4),
    ]


def test_async_watch_raises_compacted(store: Store) -> None:
    for i in range(3):
        store.put("k", str(i).encode())
    store.compact(3)

    async def main() -> None:
        async for _ in watch_batches(store, "", 1):
            pass

    with pytest.raises(CompactedError):
        asyncio.run(main())
