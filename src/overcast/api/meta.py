"""The documents about the API itself, and their route handlers: versions,
resources, extensions, QoS rule types and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from overcast.api import openapi
from overcast.api.errors import Forbidden, NotFound
from overcast.api.kinds import qos
from overcast.api.registry import HANDLERS
from overcast.api.resource import Schema
from overcast.api.session import Call
from overcast.api.wire import Response
from overcast.model.types import Host

UPDATED = "2026-11-01T00:00:00-00:00"
EXTENSIONS = {
    "address-group": "Address group",
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
    "extra_dhcp_opt": "Neutron Extra DHCP options",
    "filter-validation": "Unknown filters are rejected with 400",
    "net-mtu": "Network MTU",
    "net-mtu-writable": "Writable network MTU",
    "overcast-firewall": "Overcast: per-rule packet and byte counters of security group rules "
                         "summed over hosts (overcast:packets, overcast:bytes) and what each "
                         "host enforces for a port (overcast:firewall)",
    "overcast-qos": "Overcast: what each host enforces of a port's QoS policy, and where "
                    "(overcast:qos)",
    "overcast-public-binding": "Overcast: a port's public host name "
                               "(overcast:public_hostname): while its VM runs, a floating IP "
                               "from the public pool and the name in the public zone point at "
                               "it (overcast:public_binding)",
    "pagination": "Pagination with limit/marker",
    "port-security": "Port security",
    "project-id": "project_id alongside tenant_id",
    "provider": "Provider network attributes",
    "qos": "Quality of Service",
    "qos-bw-limit-direction": "Direction for QoS bandwidth limit rule",
    "qos-bw-minimum-ingress": "Ingress direction for QoS minimum bandwidth rule",
    "qos-port-network-policy": "QoS port network policy ID",
    "qos-rule-type-details": "Details of QoS rule types",
    "revision-if-match": "If-Match on revision_number",
    "router": "Routers and floating IPs",
    "security-group": "Security groups",
    "security-groups-remote-address-group": "Remote address group id field for security group "
                                            "rules",
    "sorting": "Sorting with sort_key/sort_dir",
    "subnet-service-types": "Subnet service types",
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
    "port": {"dns_assignment", "dns_domain", "qos_network_policy_id",
             "propagate_uplink_status", "resource_request", "data_plane_status",
             "overcast:firewall", "overcast:qos", "overcast:public_binding"},
    "security_group": {"security_group_rules", "shared"},
    "security_group_rule": {"normalized_cidr",
                            "belongs_to_default_sg", "overcast:packets", "overcast:bytes"},
    "router": {"availability_zones", "availability_zone_hints", "flavor_id"},
    "floatingip": {"port_forwardings", "port_details", "qos_policy_id"},
    "policy": {"rules"},
    "bandwidth_limit_rule": {"type", "qos_policy_id"},
    "dscp_marking_rule": {"type", "qos_policy_id"},
    "minimum_bandwidth_rule": {"type", "qos_policy_id"},
    "agent": {"alive", "topic", "availability_zone", "configurations"},
}


def extra_attrs(schema: Schema) -> set[str]:
    """Attributes a listing may filter and sort on that only rendering computes."""
    return EXTRA_ATTRS.get(schema.member, set())


# where Neutron's description differs from its name (above), and its date
NEUTRON = {
    "address-group": ("Support address group", "2020-07-15T10:00:00-00:00"),
    "extra_dhcp_opt": (
        "Extra options configuration for DHCP. For example PXE boot options to DHCP clients "
        "can be specified (e.g. tftp-server, server-ip-address, bootfile-name)",
        "2013-03-17T12:00:00-00:00"),
    "security-groups-remote-address-group": (
        "Add new field of remote address group id in SG rules", "2020-08-25T10:00:00-00:00"),
    "qos": ("The Quality of Service extension.", "2015-06-08T10:00:00-00:00"),
    "qos-bw-limit-direction": (
        "Allow to configure QoS bandwidth limit rule with specific direction: ingress or egress",
        "2017-04-10T10:00:00-00:00"),
    "qos-bw-minimum-ingress": (
        "Allow to configure QoS minumum bandwidth rule with ingress direction.",  # sic
        "2018-07-09T10:00:00-00:00"),
    "qos-port-network-policy": ("Adds a the QoS network ID to the port definition",  # sic
                                "2019-11-01T10:00:00-00:00"),
    "qos-rule-type-details": (
        "Expose details about QoS rule types supported by loaded backend drivers",
        "2017-06-22T10:00:00-00:00"),
}


def _extension(alias: str) -> dict[str, Any]:
    description, updated = NEUTRON.get(alias, (EXTENSIONS[alias], UPDATED))
    return {"alias": alias, "name": EXTENSIONS[alias], "description": description,
            "updated": updated, "links": []}


# route handlers ------------------------------------------------------------------
def versions(call: Call) -> Response:
    return Response(200, {"versions": [{
        "id": "v2.0", "status": "CURRENT",
        "links": [{"href": call.req.base_url.rstrip("/") + "/v2.0/", "rel": "self"}],
    }]})


def resources(call: Call) -> Response:
    base = call.req.base_url.rstrip("/") + "/v2.0/"
    return Response(200, {"resources": [
        {"name": h.schema.member, "collection": h.schema.collection,
         "links": [{"href": base + h.segment, "rel": "self"}]}
        for h in HANDLERS.values()]})


def extensions(call: Call) -> Response:
    return Response(200, {"extensions": [_extension(a) for a in sorted(EXTENSIONS)]})


def extension(call: Call) -> Response:
    alias = call.params["alias"]
    if alias not in EXTENSIONS:
        raise NotFound(f"Extension with alias {alias} does not exist", type="ExtensionNotFound")
    return Response(200, {"extension": _extension(alias)})


def _host_features(call: Call) -> list[dict[str, Any]]:
    return [h.features for h in call.read().peek_all(Host)]


def rule_types(call: Call) -> Response:
    """The types every registered host can realize (Neutron: those all its
    drivers support)."""
    return Response(200, {"rule_types": [{"type": t} for t in
                                         qos.supported_types(_host_features(call))]})


def rule_type(call: Call) -> Response:
    """One type's details, for an admin only (as Neutron's, which keeps the
    cloud's back ends from its projects); no drivers while a host lacks it."""
    name = call.params["type"]
    if name not in qos.RULE_TYPES:
        raise NotFound(f"QoS rule type {name} could not be found.", type="QosRuleTypeNotFound")
    if not call.ctx.is_admin:
        raise Forbidden("rule:get_rule_type is disallowed by policy (allowed: admin)")
    return Response(200, {"rule_type": qos.rule_type_details(name, _host_features(call))})


def openapi_document(call: Call) -> Response:
    return Response(200, openapi.document(call.req.base_url))
