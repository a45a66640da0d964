"""The OpenAPI 3 document of the API, generated from the same attribute maps
that parse requests, so the two cannot drift apart.

Besides each kind's collection and members it lists the paths below one object
that ``routes.ROUTES`` serves: tags (every kind whose handlers have
``tags``), port bindings, router interface actions, the rules of a QoS
policy (each type of ``qos.RULE_KINDS``, from its attributes) and address
group actions.
"""

from __future__ import annotations

from typing import Any

from overcast.api import convert as cv
from overcast.api.kinds import port_forwarding, qos
from overcast.api.registry import HANDLERS
from overcast.api.resource import Attr, Schema

_BOOL_CONVERTERS = {cv.to_bool}
# attributes that accept null on input (everything else must be a value)
NULLABLE = {"gateway_ip", "provider:segmentation_id", "provider:physical_network",
            "qos_policy_id", "port_id", "fixed_ip_address", "remote_ip_prefix",
            "remote_group_id", "protocol", "port_range_min", "port_range_max",
            "external_gateway_info", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id",
            "subnet_id", "remote_address_group_id", "default_quota", "address_scope_id",
            "prefixlen", "cidr"}
# what convert.to_tag accepts
_TAG = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^,]*$"}


def _schema(attr: Attr) -> dict[str, Any]:
    if attr.convert in _BOOL_CONVERTERS:
        return {"type": "boolean"}
    name = attr.name
    if name in ("mtu", "revision_number", "ip_version", "max_kbps", "max_burst_kbps",
                "min_kbps", "dscp_mark", "port_range_min", "port_range_max",
                "provider:segmentation_id", "default_prefixlen", "min_prefixlen",
                "max_prefixlen", "default_quota", "prefixlen"):
        return {"type": "integer", "nullable": name in NULLABLE}
    if name == "tags":
        return {"type": "array", "items": _TAG}
    if name in ("dns_nameservers", "security_groups", "availability_zone_hints", "addresses",
                "prefixes"):
        return {"type": "array", "items": {"type": "string"}}
    if name in ("allocation_pools", "host_routes", "fixed_ips", "allowed_address_pairs",
                "routes", "external_fixed_ips"):
        return {"type": "array", "items": {"type": "object"}}
    if name in ("binding:profile", "external_gateway_info", "binding:vif_details"):
        return {"type": "object", "nullable": name in NULLABLE}
    return {"type": "string", "nullable": name in NULLABLE}


def _body(schema: Schema, creating: bool) -> dict[str, Any]:
    props = {a.name: _schema(a) for a in schema.attrs if (a.post if creating else a.put)}
    required = [a.name for a in schema.attrs if a.required] if creating else []
    inner: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        inner["required"] = required
    return _json_body({"type": "object", "properties": {schema.member: inner},
                       "required": [schema.member]})


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _responses(ok: str) -> dict[str, Any]:
    return {ok: {"description": "success"}, "400": {"description": "invalid input"},
            "401": {"description": "no or bad token"},
            "403": {"description": "not allowed to the caller"},
            "404": {"description": "not found"},
            "409": {"description": "conflict"}, "412": {"description": "revision mismatch"}}


def _filters(schema: Schema) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
        for n in ("fields", "sort_key", "sort_dir", "marker", "tags", "tags-any")]
    params.append({"name": "limit", "in": "query", "required": False,
                   "schema": {"type": "integer", "minimum": 0}})
    params += [{"name": a.name, "in": "query", "required": False, "schema": {"type": "string"}}
               for a in schema.attrs if a.field is not None and a.name in ("name", "id")]
    return params


def _param(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


def _op(params: list[dict[str, Any]], ok: str,
        body: dict[str, Any] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"parameters": params, "responses": _responses(ok)}
    if body is not None:
        op["requestBody"] = body
    return op


def _paths_for(schema: Schema, has_update: bool, has_create: bool, has_delete: bool,
               member_id: str = "id") -> dict[str, Any]:
    """A collection and its members; a kind below another (its path names
    ``{parent_id}``) takes the parent as ``{id}`` and its own as ``{member_id}``."""
    coll = schema.path.replace("{parent_id}", "{id}")
    outer = [_param("id")] if "{id}" in coll else []
    inner = [*outer, _param(member_id)]
    member = f"{coll}/{{{member_id}}}"
    paths: dict[str, Any] = {coll: {"get": _op(outer + _filters(schema), "200")}}
    if has_create:
        paths[coll]["post"] = _op(outer, "201", _body(schema, True))
    paths[member] = {"get": _op(inner, "200")}
    if has_update:
        paths[member]["put"] = _op(inner, "200", _body(schema, False))
    if has_delete:
        paths[member]["delete"] = _op(inner, "204")
    return paths


def _tag_paths(schema: Schema) -> dict[str, Any]:
    """Replace, clear, show one, add one, remove one (201 for an added tag), below
    the member's path and, for a QoS policy, below Neutron's ``/v2.0/policies``."""
    paths = _tags_below(schema, schema.path)
    short = "/v2.0/" + schema.path.rsplit("/", 1)[1]
    if short != schema.path:
        paths.update(_tags_below(schema, short))
    return paths


def _tags_below(schema: Schema, path: str) -> dict[str, Any]:
    tags = path + "/{id}/tags"
    one, both = [_param("id")], [_param("id"), _param("tag", _TAG)]
    body = _json_body({"type": "object", "properties": {"tags": _schema(schema.by_name["tags"])},
                       "required": ["tags"], "additionalProperties": False})
    return {tags: {"get": _op(one, "200"), "put": _op(one, "200", body),
                   "post": _op(one, "201", body),  # tag-creation
                   "delete": _op(one, "204")},
            tags + "/{tag}": {"get": _op(both, "204"), "put": _op(both, "201"),
                              "delete": _op(both, "204")}}


# what bindings.create accepts (bindings have no attribute map)
_BINDING = {"type": "object", "required": ["host"], "additionalProperties": False,
            "properties": {"host": {"type": "string", "minLength": 1},
                           "vnic_type": {"type": "string"},
                           "profile": {"type": "object", "nullable": True}}}


def _binding_paths(schema: Schema) -> dict[str, Any]:
    bindings = schema.path + "/{id}/bindings"
    one, both = [_param("id")], [_param("id"), _param("host")]
    body = _json_body({"type": "object", "properties": {"binding": _BINDING},
                       "required": ["binding"]})
    return {bindings: {"get": _op(one, "200"), "post": _op(one, "201", body)},
            bindings + "/{host}": {"delete": _op(both, "204")},
            bindings + "/{host}/activate": {"put": _op(both, "200")}}


def _router_paths(schema: Schema) -> dict[str, Any]:
    """add_router_interface / remove_router_interface: exactly one of subnet_id, port_id;
    add_extraroutes / remove_extraroutes: {"router": {"routes": [...]}}."""
    body = _json_body({"type": "object", "additionalProperties": False,
                       "properties": {"subnet_id": {"type": "string"},
                                      "port_id": {"type": "string"}},
                       "oneOf": [{"required": ["subnet_id"]}, {"required": ["port_id"]}]})
    paths = {f"{schema.path}/{{id}}/{action}": {"put": _op([_param("id")], "200", body)}
             for action in ("add_router_interface", "remove_router_interface")}
    route = {"type": "object", "required": ["destination", "nexthop"],
             "properties": {"destination": {"type": "string"}, "nexthop": {"type": "string"}}}
    routes = _json_body({"type": "object", "required": ["router"], "properties": {"router": {
        "type": "object", "required": ["routes"], "additionalProperties": False,
        "properties": {"routes": {"type": "array", "items": route}}}}})
    for action in ("add_extraroutes", "remove_extraroutes"):  # extraroute-atomic
        paths[f"{schema.path}/{{id}}/{action}"] = {"put": _op([_param("id")], "200", routes)}
    return paths


def _rule_paths(policy: Schema) -> dict[str, Any]:
    """The rules of each type below a QoS policy, from their attributes."""
    out: dict[str, Any] = {}
    for kind in qos.RULE_KINDS:
        out.update(_paths_for(kind.schema, True, True, True, member_id="rule_id"))
    return out


def _address_paths(schema: Schema) -> dict[str, Any]:
    """add_addresses / remove_addresses: a list of CIDRs."""
    body = _json_body({"type": "object", "additionalProperties": False, "required": ["addresses"],
                       "properties": {"addresses": {"type": "array",
                                                    "items": {"type": "string"}}}})
    return {f"{schema.path}/{{id}}/{action}": {"put": _op([_param("id")], "200", body)}
            for action in ("add_addresses", "remove_addresses")}


def _prefix_paths(schema: Schema) -> dict[str, Any]:
    """add_prefixes / remove_prefixes (subnetpool-prefix-ops): a list of CIDRs."""
    body = _json_body({"type": "object", "required": ["prefixes"],
                       "properties": {"prefixes": {"type": "array", "minItems": 1,
                                                   "items": {"type": "string"}}}})
    return {f"{schema.path}/{{id}}/{action}": {"put": _op([_param("id")], "200", body)}
            for action in ("add_prefixes", "remove_prefixes")}


def _forwarding_paths(fip: Schema) -> dict[str, Any]:
    """A floating IP's port forwardings, from their attributes."""
    return _paths_for(port_forwarding.SCHEMA, True, True, True, member_id="pf_id")


def _trunk_paths(schema: Schema) -> dict[str, Any]:
    """add_subports / remove_subports (a list of subports) and get_subports."""
    body = _json_body({"type": "object", "additionalProperties": False, "required": ["sub_ports"],
                       "properties": {"sub_ports": {"type": "array",
                                                    "items": {"type": "object"}}}})
    paths: dict[str, Any] = {f"{schema.path}/{{id}}/{action}": {
        "put": _op([_param("id")], "200", body)} for action in ("add_subports", "remove_subports")}
    paths[f"{schema.path}/{{id}}/get_subports"] = {"get": _op([_param("id")], "200")}
    return paths


def _report_paths() -> dict[str, Any]:
    """network-ip-availability: a list (filters, fields) and one network's (fields);
    the availability zones (filters, fields)."""
    path = "/v2.0/network-ip-availabilities"
    topology = "/v2.0/auto-allocated-topology/{project_id}"
    return {path: {"get": _op([], "200")},
            path + "/{id}": {"get": _op([_param("id")], "200")},
            topology: {"get": _op([_param("project_id")], "200"),
                       "delete": _op([_param("project_id")], "204")},
            "/v2.0/availability_zones": {"get": _op([], "200")},
            "/v2.0/log/loggable-resources": {"get": _op([], "200")}}


def _quota_paths() -> dict[str, Any]:
    """quotas and quota_details: a project's limits, defaults and usage."""
    path, one = "/v2.0/quotas", "/v2.0/quotas/{project_id}"
    limits = _json_body({"type": "object", "required": ["quota"], "properties": {"quota": {
        "type": "object", "additionalProperties": {}}}})
    return {path: {"get": _op([], "200")},
            path + "/project": {"get": _op([], "200")},
            path + "/tenant": {"get": _op([], "200")},
            one: {"get": _op([_param("project_id")], "200"), "put": _op([_param("project_id")], "200", limits),
                  "delete": _op([_param("project_id")], "204")},
            one + "/default": {"get": _op([_param("project_id")], "200")},
            one + "/details": {"get": _op([_param("project_id")], "200")}}


# paths below one object of a kind (keyed by its member name)
_BELOW = {"port": _binding_paths, "router": _router_paths, "policy": _rule_paths,
          "address_group": _address_paths, "subnetpool": _prefix_paths,
          "floatingip": _forwarding_paths, "trunk": _trunk_paths}


def document(base_url: str) -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/": {"get": {"responses": {"200": {"description": "API versions"}}}},
        "/v2.0/extensions": {"get": {"responses": {"200": {"description": "extensions"}}}},
    }
    paths.update(_report_paths())
    paths.update(_quota_paths())
    for h in HANDLERS.values():
        paths.update(_paths_for(h.schema, h.update is not None, h.create is not None,
                                h.delete is not None))
        if h.tags:
            paths.update(_tag_paths(h.schema))
        coll = h.schema.path
        paths.update({alias + p.removeprefix(coll): ops for alias in h.schema.aliases
                      for p, ops in list(paths.items()) if f"{p}/".startswith(f"{coll}/")})
        below = _BELOW.get(h.schema.member)
        if below is not None:
            paths.update(below(h.schema))
    return {
        "openapi": "3.0.3",
        "info": {"title": "Overcast Networking API (OpenStack Neutron v2.0)", "version": "2.0"},
        "servers": [{"url": base_url.rstrip("/")}],
        "paths": paths,
    }
