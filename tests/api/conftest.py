from __future__ import annotations

from typing import Any

import pytest

from overcast.api import Api
from overcast.store import MemoryStore

from .helpers import Direct


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
