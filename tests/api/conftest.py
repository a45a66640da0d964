from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from overcast.api import Api
from overcast.store import MemoryStore

from .helpers import Direct, dump


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def client(store: MemoryStore) -> Direct:
    return Direct(Api(store))


@pytest.fixture
def net(client: Direct) -> dict[str, Any]:
    return client.network(name="net")


@pytest.fixture
def subnet(client: Direct, net: dict[str, Any]) -> dict[str, Any]:
    return client.subnet(net["id"], "10.0.0.0/24", name="sub")


@pytest.fixture
def unchanged(store: MemoryStore) -> Iterator[Callable[[], None]]:
    """``unchanged()`` once the test's objects are made: from then on the store
    stays exactly as it was (every refused request writes nothing)."""
    box: dict[str, Any] = {}

    def snapshot() -> None:
        box["before"] = dump(store)
    yield snapshot
    assert "before" in box, "call unchanged() once the test's objects are made"
    assert dump(store) == box["before"]
