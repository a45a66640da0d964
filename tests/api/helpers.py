"""Small clients for the API tests: one that calls ``Api.handle`` directly and
one over HTTP, plus assertions on the Neutron error shape."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

from overcast.api import Api, Request
from overcast.store import MemoryStore, Store


@dataclass
class Reply:
    status: int
    body: Any

    def __getitem__(self, key: str) -> Any:
        return self.body[key]


class Direct:
    """Calls ``Api.handle`` with no HTTP in between (fast)."""

    def __init__(self, api: Api, token: str | None = None) -> None:
        self.api = api
        self.token = token

    def call(self, method: str, path: str, body: Any = None, *,
             params: list[tuple[str, str]] | dict[str, str] | None = None,
             headers: dict[str, str] | None = None, raw: bytes | None = None) -> Reply:
        if isinstance(params, dict):
            params = list(params.items())
        hdrs = {k.lower(): v for k, v in (headers or {}).items()}
        if self.token is not None:
            hdrs["x-auth-token"] = self.token
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        resp = self.api.handle(Request(method, path, list(params or []), hdrs, data))
        return Reply(resp.status, resp.body)

    def get(self, path: str, **kw: Any) -> Reply:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("PUT", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Reply:
        return self.call("DELETE", path, **kw)

    # shortcuts that must succeed --------------------------------------------
    def create(self, member: str, collection: str, **attrs: Any) -> dict[str, Any]:
        path = "/v2.0/" + collection
        r = self.post(path, {member: attrs})
        assert r.status == 201, (path, attrs, r.status, r.body)
        return r.body[member]  # type: ignore[no-any-return]

    def network(self, **attrs: Any) -> dict[str, Any]:
        return self.create("network", "networks", **attrs)

    def subnet(self, network_id: str, cidr: str, **attrs: Any) -> dict[str, Any]:
        return self.create("subnet", "subnets", network_id=network_id, cidr=cidr, **attrs)

    def port(self, network_id: str, **attrs: Any) -> dict[str, Any]:
        return self.create("port", "ports", network_id=network_id, **attrs)


def assert_error(r: Reply | Any, status: int, *words: str, type: str | None = None) -> dict[str, str]:
    """The reply is a Neutron error with this status; its message names every word."""
    if isinstance(r, Reply):
        code, body = r.status, r.body
    else:  # httpx.Response
        code, body = r.status_code, r.json()
    assert code == status, (code, body)
    assert isinstance(body, dict) and set(body) == {"NeutronError"}, body
    err = body["NeutronError"]
    assert set(err) == {"type", "message", "detail"}, err
    assert all(isinstance(v, str) for v in err.values()), err
    assert err["message"], err
    for word in words:
        assert word in err["message"], (word, err["message"])
    if type is not None:
        assert err["type"] == type, err
    return err  # type: ignore[no-any-return]


def dump(store: Store) -> dict[str, bytes]:
    """Everything the API keeps in the store (to check that nothing changed)."""
    return {kv.key: kv.value for kv in store.range("/oc/").kvs}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Projects:
    """One API on a memory store with three callers: ``alice`` and ``bob``,
    members of projects of their names, and ``ops``, the admin."""

    def __init__(self) -> None:
        from overcast.api import Auth
        from overcast.api.auth import Context
        from overcast.store import MemoryStore

        self.store = MemoryStore()
        api = Api(self.store, auth=Auth({"t-ops": Context("ops", True),
                                         "t-alice": Context("alice", False),
                                         "t-bob": Context("bob", False)}))
        self.ops, self.alice, self.bob = (Direct(api, f"t-{n}") for n in ("ops", "alice", "bob"))


class CountingStore(MemoryStore):
    """A store that counts the keys it hands out (for the "flat cost" tests)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, key: str) -> Any:
        self.reads += 1
        return super().get(key)

    def range(self, prefix: str, *args: Any, **kw: Any) -> Any:
        found = super().range(prefix, *args, **kw)
        self.reads += 1 + len(found.kvs)
        return found
