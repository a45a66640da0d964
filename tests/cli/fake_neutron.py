"""A small in-memory Neutron v2.0 API behind an ``httpx.MockTransport``.

It keeps objects per collection, records every request, filters lists by
query parameters and answers errors in the NeutronError shape; enough to
test what the CLI sends and how it shows what comes back.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

COLLECTIONS = {
    "networks": "network",
    "subnets": "subnet",
    "ports": "port",
    "security-groups": "security_group",
    "security-group-rules": "security_group_rule",
    "routers": "router",
    "floatingips": "floatingip",
    "agents": "agent",
    "qos/policies": "policy",
}


@dataclass
class Sent:
    method: str
    path: str
    params: dict[str, str]
    body: Any


@dataclass
class FakeNeutron:
    objects: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {c: {} for c in COLLECTIONS}
    )
    sent: list[Sent] = field(default_factory=list)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def add(self, collection: str, **attrs: Any) -> dict[str, Any]:
        obj = {"id": str(uuid.uuid4()), "name": "", **attrs}
        self.objects[collection][obj["id"]] = obj
        return obj

    def writes(self) -> list[Sent]:
        return [s for s in self.sent if s.method != "GET"]

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        path = request.url.path.removeprefix("/v2.0/")
        self.sent.append(Sent(request.method, "/v2.0/" + path, dict(request.url.params), body))
        if path.startswith("qos/policies/") and path.split("/")[3:4] and \
                path.split("/")[3].endswith("_rules"):
            return self._rules(request.method, path, body)
        collection = next((c for c in sorted(COLLECTIONS, key=len, reverse=True)
                           if path == c or path.startswith(c + "/")), None)
        if collection is None:
            return _error(404, "HTTPNotFound", f"no such path {path}")
        rest = path[len(collection):].strip("/").split("/") if path != collection else []
        return self._dispatch(request.method, collection, rest, body, dict(request.url.params))

    def _dispatch(self, method: str, coll: str, rest: list[str], body: Any,
                  params: dict[str, str]) -> httpx.Response:
        key, objs = COLLECTIONS[coll], self.objects[coll]
        if not rest and method == "GET":
            items = [o for o in objs.values() if _matches(o, params)]
            return httpx.Response(200, json={coll.split("/")[-1].replace("-", "_"): items})
        if not rest and method == "POST":
            obj = self.add(coll, **body[key])
            return httpx.Response(201, json={key: obj})
        if rest[0] not in objs:
            name = key.replace("_", " ").title().replace(" ", "")
            return _error(404, f"{name}NotFound", f"{name} {rest[0]} could not be found.")
        obj = objs[rest[0]]
        if method == "GET":
            return httpx.Response(200, json={key: obj})
        if method == "DELETE":
            del objs[rest[0]]
            return httpx.Response(204)
        if rest[1:] == ["tags"]:
            obj["tags"] = body["tags"]
            return httpx.Response(200, json=body)
        if len(rest) > 1:  # add_router_interface and friends
            return httpx.Response(200, json={"id": obj["id"], **body})
        obj.update(body[key])
        return httpx.Response(200, json={key: obj})

    def _rules(self, method: str, path: str, body: Any) -> httpx.Response:
        parts = path.split("/")  # qos/policies/<id>/<type>_rules[/<rule>]
        policy = self.objects["qos/policies"].get(parts[2])
        if policy is None:
            return _error(404, "QosPolicyNotFound", f"QoS policy {parts[2]} could not be found.")
        coll, member = parts[3], parts[3][:-1]
        rules = policy.setdefault("_rules", {}).setdefault(coll, {})
        if method == "POST":
            rule = {"id": str(uuid.uuid4()), **body[member]}
            rules[rule["id"]] = rule
            return httpx.Response(201, json={member: rule})
        if len(parts) == 4:
            return httpx.Response(200, json={coll: list(rules.values())})
        if parts[4] not in rules:
            return _error(404, "QosRuleNotFound", f"QoS rule {parts[4]} could not be found.")
        if method == "DELETE":
            del rules[parts[4]]
            return httpx.Response(204)
        if method == "PUT":
            rules[parts[4]].update(body[member])
        return httpx.Response(200, json={member: rules[parts[4]]})


def _matches(obj: dict[str, Any], params: dict[str, str]) -> bool:
    for key, value in params.items():
        have = obj.get(key)
        text = str(have).lower() if isinstance(have, bool) else str(have)
        if key == "tags":
            if not set(value.split(",")) <= set(obj.get("tags") or []):
                return False
        elif text != value:
            return False
    return True


def _error(status: int, type_: str, message: str) -> httpx.Response:
    return httpx.Response(
        status, json={"NeutronError": {"type": type_, "message": message, "detail": ""}}
    )
