"""A throwaway recording fake of the Neutron v2.0 API.

It logs every request (method, path, query, headers, body) as one JSON line and
answers plausibly enough (version discovery, extensions, generic in-memory CRUD
with Neutron-like defaults) that the unmodified ``openstack`` CLI and
openstacksdk run to completion against it. It exists to find out which requests
those clients make; it is not a reference implementation.

Usage::

    python tests/clients/record_server.py --port 9797 --log /tmp/requests.jsonl
    export OS_AUTH_TYPE=none OS_ENDPOINT=http://127.0.0.1:9797
    openstack network create net1
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

PROJECT = "0" * 32
Obj = dict[str, Any]  # a resource as JSON

EXTENSIONS = [
    "agent",
    "allowed-address-pairs",
    "binding",
    "dns-integration",
    "external-net",
    "extra_dhcp_opt",
    "extraroute",
    "ext-gw-mode",
    "l3-ha",
    "network_availability_zone",
    "port-security",
    "project-id",
    "qos",
    "qos-bw-limit-direction",
    "qos-default",
    "quotas",
    "router",
    "security-group",
    "standard-attr-description",
    "standard-attr-revisions",
    "standard-attr-tag",
    "standard-attr-timestamp",
    "subnet_allocation",
    "fip-port-details",
    "pagination",
    "sorting",
    "filter-validation",
    "stateful-security-group",
    "port-security-groups-filtering",
    "net-mtu",
    "net-mtu-writable",
    "dns-domain-ports",
    "subnet-service-types",
]

# collection path -> (resource key, collection key)
COLLECTIONS = {
    "networks": ("network", "networks"),
    "subnets": ("subnet", "subnets"),
    "ports": ("port", "ports"),
    "security-groups": ("security_group", "security_groups"),
    "security-group-rules": ("security_group_rule", "security_group_rules"),
    "routers": ("router", "routers"),
    "floatingips": ("floatingip", "floatingips"),
    "qos/policies": ("policy", "policies"),
}


def _now() -> str:
    return "2024-01-01T00:00:00Z"


class Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: dict[str, dict[str, Obj]] = {c: {} for c in COLLECTIONS}
        self.qos_rules: dict[str, Obj] = {}
        self.minimal = False

    def defaults(self, coll: str, obj: Obj) -> Obj:
        if self.minimal:
            base = {"id": str(uuid.uuid4()), **obj}
            if coll == "networks":
                base.setdefault("subnets", [])
            if coll == "subnets" and base.get("network_id") in self.items["networks"]:
                self.items["networks"][base["network_id"]]["subnets"].append(base["id"])
            return base
        base = {
            "id": str(uuid.uuid4()),
            "project_id": PROJECT,
            "tenant_id": PROJECT,
            "description": "",
            "created_at": _now(),
            "updated_at": _now(),
            "revision_number": 0,
            "tags": [],
        }
        if coll == "networks":
            base.update(
                name="",
                admin_state_up=True,
                status="ACTIVE",
                shared=False,
                subnets=[],
                mtu=1450,
                port_security_enabled=True,
                **{"router:external": False},
                availability_zone_hints=[],
                availability_zones=[],
                ipv4_address_scope=None,
                ipv6_address_scope=None,
                is_default=False,
                qos_policy_id=None,
                dns_domain="",
                **{
                    "provider:network_type": "vxlan",
                    "provider:physical_network": None,
                    "provider:segmentation_id": 1001,
                },
            )
        elif coll == "subnets":
            base.update(
                name="",
                enable_dhcp=True,
                dns_nameservers=[],
                host_routes=[],
                ip_version=4,
                ipv6_ra_mode=None,
                ipv6_address_mode=None,
                service_types=[],
                subnetpool_id=None,
                segment_id=None,
            )
            cidr = ipaddress.ip_network(obj.get("cidr", "10.0.0.0/24"), strict=False)
            hosts = list(cidr.hosts())
            base["gateway_ip"] = str(hosts[0])
            base["allocation_pools"] = [{"start": str(hosts[1]), "end": str(hosts[-1])}]
        elif coll == "ports":
            base.update(
                name="",
                admin_state_up=True,
                status="DOWN",
                device_id="",
                device_owner="",
                mac_address="fa:16:3e:00:00:01",
                fixed_ips=[],
                allowed_address_pairs=[],
                extra_dhcp_opts=[],
                security_groups=[],
                port_security_enabled=True,
                binding_host_id="",
                dns_name="",
                dns_assignment=[],
                qos_policy_id=None,
                **{
                    "binding:host_id": "",
                    "binding:vif_type": "unbound",
                    "binding:vnic_type": "normal",
                    "binding:profile": {},
                    "binding:vif_details": {},
                },
            )
        elif coll == "security-groups":
            base.update(name="", security_group_rules=[], stateful=True, shared=False)
        elif coll == "security-group-rules":
            base.update(
                direction="ingress",
                ethertype="IPv4",
                protocol=None,
                port_range_min=None,
                port_range_max=None,
                remote_ip_prefix=None,
                remote_group_id=None,
                remote_address_group_id=None,
                security_group_id=None,
                normalized_cidr=None,
            )
        elif coll == "routers":
            base.update(
                name="",
                admin_state_up=True,
                status="ACTIVE",
                external_gateway_info=None,
                routes=[],
                distributed=False,
                ha=False,
                availability_zone_hints=[],
                availability_zones=[],
                flavor_id=None,
            )
        elif coll == "floatingips":
            base.update(
                floating_ip_address="203.0.113.10",
                fixed_ip_address=None,
                port_id=None,
                router_id=None,
                status="DOWN",
                dns_domain="",
                dns_name="",
                port_details=None,
                qos_policy_id=None,
                port_forwardings=[],
            )
        elif coll == "qos/policies":
            base.update(name="", shared=False, is_default=False, rules=[])
        base.update(obj)
        if coll == "ports" and not base["fixed_ips"]:
            base["fixed_ips"] = [
                {"subnet_id": s["id"], "ip_address": "10.0.0.5"}
                for s in self.items["subnets"].values()
                if s["network_id"] == base.get("network_id")
            ][:1]
        if coll == "ports":
            for fip in base["fixed_ips"]:
                fip.setdefault("ip_address", "10.0.0.6")
        if coll == "subnets" and base.get("network_id") in self.items["networks"]:
            self.items["networks"][base["network_id"]]["subnets"].append(base["id"])
        return base


class Handler(BaseHTTPRequestHandler):
    server_version = "record-server/0"
    store: Store
    log = sys.stdout
    mode = "full"  # full | no-root | minimal-root | minimal-bodies

    def log_message(self, fmt: str, *args: object) -> None:  # quiet stderr
        pass

    # --- plumbing -------------------------------------------------------
    def _record(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        rec = {
            "method": self.command,
            "path": parts.path,
            "query": parts.query,
            "headers": {k: v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace") if body else None,
        }
        self.log.write(json.dumps(rec) + "\n")
        self.log.flush()

    def _send(self, status: int, obj: object | None) -> None:
        data = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        if obj is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Openstack-Request-Id", "req-" + str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    def _not_found(self, what: str) -> None:
        self._send(
            404,
            {"NeutronError": {"type": "NotFound", "message": f"{what} not found", "detail": ""}},
        )

    def _handle(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        self._record(raw)
        body = json.loads(raw) if raw else None
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/")
        if path.endswith(".json"):
            path = path[:-5]
        query = parse_qs(parts.query)
        base = f"http://{self.headers.get('Host')}"
        if path == "" and self.command == "GET" and self.mode.startswith("{"):
            return self._send(200, json.loads(self.mode.replace("BASE", base)))
        if path == "" and self.command == "GET" and self.mode == "no-root":
            return self._not_found("/")
        if path == "" and self.command == "GET" and self.mode == "minimal-root":
            return self._send(200, {"versions": [{"id": "v2.0", "status": "CURRENT", "links": []}]})
        if path == "" and self.command == "GET":
            return self._send(
                200,
                {
                    "versions": [
                        {
                            "id": "v2.0",
                            "status": "CURRENT",
                            "links": [{"href": base + "/v2.0/", "rel": "self"}],
                        }
                    ]
                },
            )
        if path == "/v2.0" and self.command == "GET":
            return self._send(
                200,
                {
                    "resources": [
                        {
                            "name": r,
                            "collection": c,
                            "links": [{"href": f"{base}/v2.0/{p}", "rel": "self"}],
                        }
                        for p, (r, c) in COLLECTIONS.items()
                    ]
                },
            )
        if not path.startswith("/v2.0/"):
            return self._not_found(path)
        rest = path[len("/v2.0/") :]
        if rest == "extensions":
            return self._send(
                200,
                {
                    "extensions": [
                        {"alias": a, "name": a, "description": a, "updated": _now(), "links": []}
                        for a in EXTENSIONS
                    ]
                },
            )
        if rest.startswith("extensions/"):
            alias = rest.split("/", 1)[1]
            if alias in EXTENSIONS:
                return self._send(
                    200,
                    {
                        "extension": {
                            "alias": alias,
                            "name": alias,
                            "description": alias,
                            "updated": _now(),
                            "links": [],
                        }
                    },
                )
            return self._not_found("extension " + alias)
        with self.store.lock:
            return self._crud(rest, query, body)

    def _crud(self, rest: str, query: dict[str, list[str]], body: Any) -> None:
        st = self.store
        segs = rest.split("/")
        # qos rules: qos/policies/<id>/bandwidth_limit_rules[/<rid>]
        if rest.startswith("qos/policies/") and len(segs) >= 4:
            pid, kind = segs[2], segs[3]
            pol = st.items["qos/policies"].get(pid)
            if pol is None:
                return self._not_found("policy")
            rkey = kind[:-1]  # bandwidth_limit_rule
            if self.command == "POST":
                rule: Obj = {
                    "id": str(uuid.uuid4()),
                    "max_kbps": 0,
                    "max_burst_kbps": 0,
                    "direction": "egress",
                    "type": kind[: -len("_rules")],
                }
                rule.update(body[rkey])
                st.qos_rules[rule["id"]] = rule
                pol.setdefault("rules", []).append(rule)
                return self._send(201, {rkey: rule})
            if len(segs) == 4:
                return self._send(
                    200, {kind: [r for r in pol["rules"] if r["type"] + "_rules" == kind]}
                )
            known = st.qos_rules.get(segs[4])
            if known is None:
                return self._not_found("rule")
            return self._send(200, {rkey: known})
        coll = None
        for c in sorted(COLLECTIONS, key=len, reverse=True):
            if rest == c or rest.startswith(c + "/"):
                coll = c
                break
        if coll is None:
            return self._not_found(rest)
        rkey, ckey = COLLECTIONS[coll]
        items = st.items[coll]
        tail = rest[len(coll) :].strip("/")
        if not tail:
            if self.command == "GET":
                objs = list(items.values())
                for k, vs in query.items():
                    if k in ("limit", "marker", "fields", "sort_key", "sort_dir", "page_reverse"):
                        continue
                    objs = [
                        o
                        for o in objs
                        if str(o.get(k)) in vs or str(o.get(k)).lower() in [v.lower() for v in vs]
                    ]
                resp = {ckey: objs}
                if "marker" in query:
                    ids = [o["id"] for o in objs]
                    m = query["marker"][0]
                    objs = objs[ids.index(m) + 1 :] if m in ids else []
                if "limit" in query:
                    lim = int(query["limit"][0])
                    page = objs[:lim]
                    resp = {ckey: page}
                    if len(objs) > lim:
                        resp[ckey + "_links"] = [
                            {
                                "rel": "next",
                                "href": (
                                    f"http://{self.headers.get('Host')}/v2.0/{coll}"
                                    f"?limit={lim}&marker={page[-1]['id']}"
                                ),
                            }
                        ]
                else:
                    resp = {ckey: objs}
                return self._send(200, resp)
            if self.command == "POST":
                if ckey in body:
                    made = [st.defaults(coll, o) for o in body[ckey]]
                    for o in made:
                        items[o["id"]] = o
                    return self._send(201, {ckey: made})
                o = st.defaults(coll, body[rkey])
                items[o["id"]] = o
                return self._send(201, {rkey: o})
        oid, _, action = tail.partition("/")
        obj = items.get(oid)
        if obj is None:
            return self._not_found(f"{rkey} {oid}")
        if action:
            if action == "add_router_interface":
                port = st.defaults(
                    "ports", {"device_id": oid, "device_owner": "network:router_interface"}
                )
                return self._send(
                    200,
                    {
                        "id": oid,
                        "subnet_id": body.get("subnet_id"),
                        "subnet_ids": [body.get("subnet_id")],
                        "port_id": port["id"],
                        "tenant_id": PROJECT,
                        "project_id": PROJECT,
                        "network_id": "x",
                    },
                )
            if action == "remove_router_interface":
                return self._send(200, {"id": oid, "subnet_id": body.get("subnet_id")})
            if action == "tags":
                obj["tags"] = body["tags"]
                return self._send(200, {"tags": obj["tags"]})
            return self._not_found(action)
        if self.command == "GET":
            return self._send(200, {rkey: obj})
        if self.command == "PUT":
            obj.update(body[rkey])
            obj["revision_number"] = obj.get("revision_number", 0) + 1
            return self._send(200, {rkey: obj})
        if self.command == "DELETE":
            del items[oid]
            return self._send(204, None)
        return self._send(405, None)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle


def serve(port: int, log: TextIO, mode: str = "full") -> ThreadingHTTPServer:
    store = Store()
    store.minimal = mode == "minimal-bodies"
    handler = type("H", (Handler,), {"store": store, "log": log, "mode": mode})
    return ThreadingHTTPServer(("127.0.0.1", port), handler)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=9797)
    ap.add_argument("--log", default="-")
    ap.add_argument("--mode", default="full")
    a = ap.parse_args(argv)
    log = sys.stdout if a.log == "-" else open(a.log, "a")  # noqa: SIM115
    serve(a.port, log, a.mode).serve_forever()


if __name__ == "__main__":
    main()
