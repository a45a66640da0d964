"""Open a store from a URL, so that every process is configured the same way."""

from __future__ import annotations

import os

from overcast.store.base import Store, StoreError
from overcast.store.memory import MemoryStore
from overcast.store.sqlite import SqliteStore


def open_store(url: str) -> Store:
    """``memory:``, ``sqlite:///abs/path.db``, ``sqlite:relative.db`` or a bare ``*.db`` path."""
    if url == "memory:" or url == "memory://":
        return MemoryStore()
    if url.startswith("sqlite://"):
        path = url[len("sqlite://") :]
        if not path.startswith("/"):
            raise StoreError(f"store URL {url!r}: sqlite:// needs an absolute path (sqlite:///...)")
        return SqliteStore(path)
    if url.startswith("sqlite:"):
        path = url[len("sqlite:") :]
        if not path:
            raise StoreError(f"store URL {url!r}: no file path")
        return SqliteStore(os.path.abspath(path))
    if url.endswith(".db"):
        return SqliteStore(os.path.abspath(url))
    raise StoreError(
        f"unknown store URL {url!r}: expected memory:, sqlite:///abs/path.db, "
        "sqlite:relative.db or a path ending in .db"
    )
