"""The documents about the API itself: versions, resources, extensions, and a
few collection-level specials (QoS rule types, each project's default group)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from overcast.api.auth import Context
from overcast.api.errors import NotFound
from overcast.api.kinds import security
from overcast.api.resource import Kind

if TYPE_CHECKING:
    from overcast.api.service import Api, Request, Response

UPDATED = "2026-11-01T00:00:00-00:00"
EXTENSIONS = {
    "agent": "Agents (Overcast host agents)",
    "allowed-address-pairs": "Allowed address pairs",
    "binding": "Port binding",
    "binding-extended": "Port bindings sub-resource (multiple bindings for live migration)",
    "dns-integration": "DNS integration (dns_name, dns_assignment)",
    "dns-domain-ports": "dns_domain for ports",
    "external-net": "Networks with router:external",
    "ext-gw-mode": "enable_snat on router gateways",
    "extraroute": "Static routes on routers",
    "fip-port-details": "port_details on floating IPs",
    "filter-validation": "Unknown filters are rejected with 400",
    "net-mtu": "Network MTU",
    "net-mtu-writable": "Writable network MTU",
    "pagination": "Pagination with limit/marker",
    "port-security": "Port security",
    "project-id": "project_id alongside tenant_id",
    "provider": "Provider network attributes",
    "qos": "Quality of service",
    "qos-bw-limit-direction": "Direction of bandwidth limit rules",
    "qos-rule-type-details": "Details of QoS rule types",
    "revision-if-match": "If-Match on revision_number",
    "router": "Routers and floating IPs",
    "security-group": "Security groups",
    "sorting": "Sorting with sort_key/sort_dir",
    "standard-attr-description": "description on every resource",
    "standard-attr-revisions": "revision_number on every resource",
    "standard-attr-tag": "Tags on every resource",
    "standard-attr-timestamp": "created_at/updated_at on every resource",
    "stateful-security-group": "stateful attribute of security groups",
    "tag-ports-during-bulk-creation": "Tags in bulk port create",
}

EXTRA_ATTRS = {
    "network": {"subnets", "availability_zones", "ipv4_address_scope", "ipv6_address_scope",
                "is_default", "l2_adjacency"},
    "port": {"dns_assignment", "dns_domain", "extra_dhcp_opts", "qos_network_policy_id",
             "propagate_uplink_status", "resource_request", "data_plane_status"},
    "security_group": {"security_group_rules", "shared"},
    "security_group_rule": {"remote_address_group_id", "normalized_cidr",
                            "belongs_to_default_sg"},
    "router": {"availability_zones", "availability_zone_hints", "flavor_id"},
    "floatingip": {"port_forwardings", "port_details", "qos_policy_id"},
    "policy": {"rules"},
    "bandwidth_limit_rule": {"type", "qos_policy_id"},
    "agent": {"alive", "topic", "availability_zone", "configurations"},
}


def extra_attrs(kind: Kind) -> set[str]:
    return EXTRA_ATTRS.get(kind.member, set())


def versions(base_url: str) -> dict[str, Any]:
    return {"versions": [{
        "id": "v2.0", "status": "CURRENT",
        "links": [{"href": base_url.rstrip("/") + "/v2.0/", "rel": "self"}],
    }]}


def resources(base_url: str) -> dict[str, Any]:
    from overcast.api.registry import HANDLERS

    base = base_url.rstrip("/") + "/v2.0/"
    return {"resources": [
        {"name": h.kind.member, "collection": h.kind.collection,
         "links": [{"href": base + h.kind.path.removeprefix("/v2.0/"), "rel": "self"}]}
        for h in HANDLERS.values()]}


def _extension(alias: str) -> dict[str, Any]:
    return {"alias": alias, "name": EXTENSIONS[alias], "description": EXTENSIONS[alias],
            "updated": UPDATED, "links": []}


def route(api: Api, ctx: Context, req: Request, path: str) -> Response | None:
    from overcast.api.service import Response

    if req.method != "GET":
        return None
    if path == "/v2.0/extensions":
        return Response(200, {"extensions": [_extension(a) for a in sorted(EXTENSIONS)]})
    if path.startswith("/v2.0/extensions/"):
        alias = path.removeprefix("/v2.0/extensions/")
        if alias not in EXTENSIONS:
            raise NotFound(f"Extension with alias {alias} does not exist",
                           type="ExtensionNotFound")
        return Response(200, {"extension": _extension(alias)})
    if path == "/v2.0/qos/rule-types":
        return Response(200, {"rule_types": [{"type": "bandwidth_limit"}]})
    if path == "/v2.0/qos/rule-types/bandwidth_limit":
        return Response(200, {"rule_type": {"type": "bandwidth_limit", "drivers": [
            {"name": "overcast", "supported_parameters": [
                {"parameter_name": "max_kbps", "parameter_type": "range",
                 "parameter_values": {"start": 0, "end": 2147483647}},
                {"parameter_name": "direction", "parameter_type": "choices",
                 "parameter_values": ["ingress", "egress"]}]}]}})
    return None


def with_default_group(api: Api, ctx: Context, groups: list[Any]) -> list[Any]:
    """Listing groups makes the caller's default group, as Neutron does."""
    if any(g.project_id == ctx.project_id and g.name == "default" for g in groups):
        return groups
    made = api.write(lambda repo: security.ensure_default(repo, ctx.project_id))
    return [*groups, made]
