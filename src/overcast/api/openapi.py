"""The OpenAPI 3 document of the API, generated from the same attribute maps
that parse requests, so the two cannot drift apart."""

from __future__ import annotations

from typing import Any

from overcast.api import convert as cv
from overcast.api.resource import Attr, Kind

_BOOL_CONVERTERS = {cv.to_bool}
# attributes that accept null on input (everything else must be a value)
NULLABLE = {"gateway_ip", "provider:segmentation_id", "provider:physical_network",
            "qos_policy_id", "port_id", "fixed_ip_address", "remote_ip_prefix",
            "remote_group_id", "protocol", "port_range_min", "port_range_max",
            "external_gateway_info", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id",
            "subnet_id"}


def _schema(attr: Attr) -> dict[str, Any]:
    if attr.convert in _BOOL_CONVERTERS:
        return {"type": "boolean"}
    name = attr.name
    if name in ("mtu", "revision_number", "ip_version", "max_kbps", "max_burst_kbps",
                "port_range_min", "port_range_max", "provider:segmentation_id"):
        return {"type": "integer", "nullable": name in NULLABLE}
    if name in ("tags", "dns_nameservers", "security_groups", "availability_zone_hints"):
        return {"type": "array", "items": {"type": "string"}}
    if name in ("allocation_pools", "host_routes", "fixed_ips", "allowed_address_pairs",
                "routes", "external_fixed_ips"):
        return {"type": "array", "items": {"type": "object"}}
    if name in ("binding:profile", "external_gateway_info", "binding:vif_details"):
        return {"type": "object", "nullable": name in NULLABLE}
    return {"type": "string", "nullable": name in NULLABLE}


def _body(kind: Kind, creating: bool) -> dict[str, Any]:
    props = {a.name: _schema(a) for a in kind.attrs if (a.post if creating else a.put)}
    required = [a.name for a in kind.attrs if a.required] if creating else []
    inner: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        inner["required"] = required
    return {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "properties": {kind.member: inner}, "required": [kind.member]}}}}


def _responses(ok: str) -> dict[str, Any]:
    return {ok: {"description": "success"}, "400": {"description": "invalid input"},
            "401": {"description": "no or bad token"}, "404": {"description": "not found"},
            "409": {"description": "conflict"}, "412": {"description": "revision mismatch"}}


def _filters(kind: Kind) -> list[dict[str, Any]]:
    params = [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
              for n in ("fields", "sort_key", "sort_dir", "marker", "tags", "tags-any")]
    params.append({"name": "limit", "in": "query", "required": False,
                   "schema": {"type": "integer", "minimum": 0}})
    params += [{"name": a.name, "in": "query", "required": False, "schema": {"type": "string"}}
               for a in kind.attrs if a.field is not None and a.name in ("name", "id")]
    return params


def _paths_for(kind: Kind, has_update: bool, has_create: bool,
               has_delete: bool) -> dict[str, Any]:
    coll = kind.path
    member = coll + "/{id}"
    id_param = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    paths: dict[str, Any] = {coll: {"get": {"parameters": _filters(kind),
                                            "responses": _responses("200")}}}
    if has_create:
        paths[coll]["post"] = {"requestBody": _body(kind, True), "responses": _responses("201")}
    paths[member] = {"get": {"parameters": id_param, "responses": _responses("200")}}
    if has_update:
        paths[member]["put"] = {"parameters": id_param, "requestBody": _body(kind, False),
                                "responses": _responses("200")}
    if has_delete:
        paths[member]["delete"] = {"parameters": id_param, "responses": _responses("204")}
    return paths


def document(base_url: str) -> dict[str, Any]:
    from overcast.api.registry import HANDLERS

    paths: dict[str, Any] = {
        "/": {"get": {"responses": {"200": {"description": "API versions"}}}},
        "/v2.0/extensions": {"get": {"responses": {"200": {"description": "extensions"}}}},
    }
    for h in HANDLERS.values():
        paths.update(_paths_for(h.kind, h.update is not None, h.create is not None,
                                h.delete is not None))
    return {
        "openapi": "3.0.3",
        "info": {"title": "Overcast Networking API (OpenStack Neutron v2.0)", "version": "2.0"},
        "servers": [{"url": base_url.rstrip("/")}],
        "paths": paths,
    }
