"""Fixtures: every store test runs against both embedded backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from overcast.store import MemoryStore, SqliteStore, Store

from .store_testing import FakeClock, StoreFactory


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """A factory of stores of one backend; keyword arguments go to the constructor."""
    made: list[Store] = []

    def make(**kwargs: object) -> Store:
        if request.param == "memory":
            store: Store = MemoryStore(**kwargs)  # type: ignore[arg-type]
        else:
            store = SqliteStore(str(tmp_path / f"s{len(made)}" / "store.db"), **kwargs)  # type: ignore[arg-type]
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> Store:
    return make_store()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
