"""open_store: one URL syntax for every process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from overcast.store import MemoryStore, SqliteStore, StoreError, open_store


def test_memory() -> None:
    assert isinstance(open_store("memory:"), MemoryStore)


def test_sqlite_absolute(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "a.db"
    store = open_store(f"sqlite://{path}")
    assert isinstance(store, SqliteStore) and store.path == str(path)
    store.put("k", b"v")
    store.close()
    again = open_store(str(path))  # bare path: the same file
    assert again.get("k").value == b"v"  # type: ignore[union-attr]
    again.close()


def test_sqlite_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:rel/x.db")
    assert isinstance(store, SqliteStore)
    assert store.path == os.path.join(str(tmp_path), "rel", "x.db")
    assert os.path.exists(store.path)
    store.close()


@pytest.mark.parametrize(
    "url", ["etcd3://nowhere:2379", "sqlite:", "sqlite://relative.db", "x.txt"]
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(StoreError):
        open_store(url)
