"""An API write compares only model keys: what agents write (hosts, liveness,
port status) is read without tracking, so heartbeats and status reports never
force an API transaction to retry.  And the API's clock, ids and MAC
randomness are seams."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from overcast.api import Api, Seams
from overcast.model import keys
from overcast.model.types import Host
from overcast.store import Compare, MemoryStore, Op, TxnResult, dump_json

from .helpers import Direct

AGENT_PREFIXES = (keys.HOST, keys.ALIVE, keys.PORT_STATUS)

P1 = "00000000-0000-4000-8000-000000000001"  # a port id the tests choose


class Recording(MemoryStore):
    """A store that records the compares of every API commit (a writing
    transaction that compares; an agent's plain puts do not) and can run
    ``before_commit`` (once) just before the next one is applied."""

    def __init__(self) -> None:
        super().__init__()
        self.commits: list[tuple[list[Compare], bool]] = []
        self.before_commit: Callable[[], None] | None = None

    def txn(self, compares: list[Compare], success: list[Op],
            failure: list[Op] | None = None) -> TxnResult:
        api_commit = bool(success and compares)
        if api_commit and self.before_commit is not None:
            hook, self.before_commit = self.before_commit, None
            hook()
        res = super().txn(compares, success, failure)
        if api_commit:
            self.commits.append((list(compares), res.succeeded))
        return res


def _agent_reports(store: MemoryStore, port_id: str | None = None, beat: int = 0) -> None:
    """What an agent on h1 writes: its host (with a heartbeat), liveness, a port's status."""
    host = Host(id="h1", host="h1", underlay_ip="192.0.2.1",
                heartbeat_timestamp=f"2030-01-01T00:00:{beat:02d}Z")
    store.put(keys.host("h1"), dump_json(host.to_stored()))
    store.put(keys.alive("h1"), b"1")
    if port_id is not None:
        store.put(keys.port_status(port_id), dump_json({"status": "ACTIVE", "host": "h1"}))


def _agent_keys(compares: list[Compare]) -> list[str]:
    return [c.key for c in compares if c.key.startswith(AGENT_PREFIXES)]


def _setup() -> tuple[Recording, Direct, dict[str, Any]]:
    store = Recording()
    client = Direct(Api(store))
    net = client.network(name="n")
    client.subnet(net["id"], "10.0.0.0/24")
    _agent_reports(store)
    return store, client, net


def test_a_port_write_compares_no_key_an_agent_writes() -> None:
    store, client, net = _setup()
    store.commits.clear()
    port = client.port(net["id"], id=P1, **{"binding:host_id": "h1"})
    assert port["binding:vif_type"] == "tap"  # the host was read, to render the port
    _agent_reports(store, P1, beat=1)
    r = client.put(f"/v2.0/ports/{P1}", {"port": {"name": "renamed"}})
    assert r.status == 200 and r["port"]["status"] == "ACTIVE"  # the status was read too
    assert len(store.commits) == 2
    for compares, succeeded in store.commits:
        assert succeeded
        assert compares and _agent_keys(compares) == []


def test_agent_writes_between_read_and_commit_cause_no_retry() -> None:
    store, client, net = _setup()
    store.commits.clear()
    store.before_commit = lambda: _agent_reports(store, P1, beat=2)
    port = client.port(net["id"], id=P1, **{"binding:host_id": "h1"})
    assert port["binding:vif_type"] == "tap"
    assert [ok for _, ok in store.commits] == [True]  # committed at the first attempt

    store.commits.clear()
    store.before_commit = lambda: _agent_reports(store, P1, beat=3)
    r = client.put(f"/v2.0/ports/{P1}", {"port": {"name": "renamed"}})
    assert r.status == 200 and r["port"]["status"] == "ACTIVE"
    assert [ok for _, ok in store.commits] == [True]


def test_model_writes_between_read_and_commit_still_conflict() -> None:
    """The other side: a concurrent change of what the write relies on (the
    port itself) still makes the transaction retry."""
    store, client, net = _setup()
    client.port(net["id"], id=P1)
    store.commits.clear()

    def someone_else_renames() -> None:
        raw = store.get(keys.obj("port", P1))
        assert raw is not None
        store.put(raw.key, raw.value.replace(b'"name":""', b'"name":"theirs"'))
    store.before_commit = someone_else_renames
    r = client.put(f"/v2.0/ports/{P1}", {"port": {"description": "mine"}})
    assert r.status == 200 and r["port"]["name"] == "theirs"
    assert [ok for _, ok in store.commits] == [False, True]


def test_clock_ids_and_mac_randomness_are_injected() -> None:
    def run() -> tuple[dict[str, Any], dict[str, Any]]:
        counter = itertools.count(1)
        seams = Seams(clock=lambda: datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
                      new_id=lambda: f"id-{next(counter)}", rng=random.Random(42))
        client = Direct(Api(MemoryStore(), seams=seams))
        net = client.network(name="n")
        client.subnet(net["id"], "10.0.0.0/24")
        return net, client.port(net["id"])
    net, port = run()
    assert net["id"] == "id-1" and port["id"] == "id-3"
    assert net["created_at"] == net["updated_at"] == "2030-01-02T03:04:05Z"
    assert port["mac_address"].startswith("fa:16:3e:")
    again = run()
    assert again == (net, port)  # the same seams, the same answers
