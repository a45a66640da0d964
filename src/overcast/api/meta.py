"""The documents about the API itself, and their route handlers: versions,
resources, extensions, QoS rule types and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from overcast.api import grants, openapi
from overcast.api.auth import Context
from overcast.api.errors import Forbidden, NotFound
from overcast.api.kinds import qos
from overcast.api.registry import HANDLERS
from overcast.api.repo import Repo
from overcast.api.resource import Schema
from overcast.api.session import Call
from overcast.api.wire import Response
from overcast.model.types import Host, Network

UPDATED = "2026-11-01T00:00:00-00:00"
# alias -> Neutron's name, description and date (neutron-lib's api definitions
# and neutron/extensions): clients and tempest look them up as Neutron has them
NEUTRON = {
    "address-group": (
        "Address group",
        "Support address group",
        "2020-07-15T10:00:00-00:00"),
    "address-scope": (
        "Address scope",
        "Address scopes extension.",
        "2015-07-26T10:00:00-00:00"),
    "agent": (
        "agent",
        "The agent management extension.",
        "2013-02-03T10:00:00-00:00"),
    "allowed-address-pairs": (
        "Allowed Address Pairs",
        "Provides allowed address pairs",
        "2013-07-23T10:00:00-00:00"),
    "auto-allocated-topology": (
        "Auto Allocated Topology Services",
        "Auto Allocated Topology Services.",
        "2016-01-01T00:00:00-00:00"),
    "availability_zone": (
        "Availability Zone",
        "The availability zone extension.",
        "2015-01-01T10:00:00-00:00"),
    "availability_zone_filter": (
        "Availability Zone Filter Extension",
        "Add filter parameters to AvailabilityZone resource",
        "2018-06-22T10:00:00-00:00"),
    "binding": (
        "Port Binding",
        "Expose port bindings of a virtual port to external application",
        "2014-02-03T10:00:00-00:00"),
    "binding-extended": (
        "Port Bindings Extended",
        "Expose port bindings of a virtual port to external application",
        "2017-07-17T10:00:00-00:00"),
    "default-subnetpools": (
        "Default Subnetpools",
        "Provides ability to mark and use a subnetpool as the default.",
        "2016-02-18T18:00:00-00:00"),
    "dns-domain-ports": (
        "dns_domain for ports",
        "Allows the DNS domain to be specified for a network port.",
        "2017-04-24T10:00:00-00:00"),
    "dns-integration": (
        "DNS Integration",
        "Provides integration with DNS.",
        "2015-08-15T18:00:00-00:00"),
    "dvr": (
        "Distributed Virtual Router",
        "Enables configuration of Distributed Virtual Routers.",
        "2014-06-1T10:00:00-00:00"),  # sic
    "ext-gw-mode": (
        "Neutron L3 Configurable external gateway mode",
        "Extension of the router abstraction for specifying whether SNAT should occur on the "
        "external gateway",
        "2013-03-28T10:00:00-00:00"),
    "external-net": (
        "Neutron external network",
        "Adds external network attribute to network resource.",
        "2013-01-14T10:00:00-00:00"),
    "extra_dhcp_opt": (
        "Neutron Extra DHCP options",
        "Extra options configuration for DHCP. For example PXE boot options to DHCP clients can "
        "be specified (e.g. tftp-server, server-ip-address, bootfile-name)",
        "2013-03-17T12:00:00-00:00"),
    "extraroute": (
        "Neutron Extra Route",
        "Extra routes configuration for L3 router",
        "2013-02-01T10:00:00-00:00"),
    "filter-validation": (
        "Filter parameters validation",
        "Provides validation on filter parameters.",
        "2018-07-04T10:00:00-00:00"),
    "extraroute-atomic": (
        "Atomically add/remove extra routes",
        "Edit extra routes of a router on server side by atomically adding/removing extra "
        "routes",
        "2019-07-10T00:00:00+00:00"),
    "floating-ip-port-forwarding": (
        "Floating IP Port Forwarding",
        "Allow port forwarding from floating IP port to an internal port",
        "2018-01-19T10:00:00-00:00"),
    "floating-ip-port-forwarding-detail": (
        "Floating IP port forwarding detail",
        "Allow list floating ip return more port forwarding data, include'id' and "
        "'internal_port_id'",  # sic
        "2022-05-06T10:00:00-00:00"),
    "floating-ip-port-forwarding-description": (
        "Floating IP Port Forwarding new attribute description",
        "Add a description field to Port Forwarding rules",
        "2019-11-01T10:00:00-00:00"),
    "floating-ip-port-forwarding-port-ranges": (
        "Floating IP Port Forwarding support port ranges",
        "Add support to port ranges",
        "2020-07-01T10:00:00-00:00"),
    "fip-port-details": (
        "Floating IP Port Details Extension",
        "Add port_details attribute to Floating IP resource",
        "2018-04-09T10:00:00-00:00"),
    "network-ip-availability": (
        "Network IP Availability",
        "Provides IP availability data for each network and subnet.",
        "2015-09-24T00:00:00-00:00"),
    "network_availability_zone": (
        "Network Availability Zone",
        "Availability zone support for network.",
        "2015-01-01T10:00:00-00:00"),
    "network-segment-range": (
        "Neutron Network Segment Range",
        "Provides support for the network segment range management",
        "2018-11-29T00:00:00-00:00"),
    "logging": (
        "Logging API Extension",
        "Provides a logging API for resources such as security group and firewall.",
        "2017-01-01T10:00:00-00:00"),
    "metering": (
        "Neutron Metering",
        "Neutron Metering extension.",
        "2013-06-12T10:00:00-00:00"),
    "net-mtu": (
        "Network MTU",
        "Provides MTU attribute for a network resource.",
        "2015-03-25T10:00:00-00:00"),
    "net-mtu-writable": (
        "Network MTU (writable)",
        "Provides a writable MTU attribute for a network resource.",
        "2017-07-12T00:00:00-00:00"),
    "pagination": (
        "Pagination support",
        "Extension that indicates that pagination is enabled.",
        "2016-06-12T00:00:00-00:00"),
    "port-security": (
        "Port Security",
        "Provides port security",
        "2012-07-23T10:00:00-00:00"),
    "project-id": (
        "project_id field enabled",
        "Extension that indicates that project_id field is enabled.",
        "2016-09-09T09:09:09-09:09"),
    "provider": (
        "Provider Network",
        "Expose mapping of virtual networks to physical networks",
        "2012-09-07T10:00:00-00:00"),
    "qos": (
        "Quality of Service",
        "The Quality of Service extension.",
        "2015-06-08T10:00:00-00:00"),
    "qos-bw-limit-direction": (
        "Direction for QoS bandwidth limit rule",
        "Allow to configure QoS bandwidth limit rule with specific direction: ingress or egress",
        "2017-04-10T10:00:00-00:00"),
    "qos-bw-minimum-ingress": (
        "Ingress direction for QoS minimum bandwidth rule",
        "Allow to configure QoS minumum bandwidth rule with ingress direction.",  # sic
        "2018-07-09T10:00:00-00:00"),
    "qos-default": (
        "QoS default policy",
        "Expose the QoS default policy per project",
        "2017-041-06T10:00:00-00:00"),  # sic
    "qos-port-network-policy": (
        "QoS port network policy ID",
        "Adds a the QoS network ID to the port definition",  # sic
        "2019-11-01T10:00:00-00:00"),
    "qos-rule-type-details": (
        "Details of QoS rule types",
        "Expose details about QoS rule types supported by loaded backend drivers",
        "2017-06-22T10:00:00-00:00"),
    "quota_details": (
        "Quota details management support",
        "Expose functions for quotas usage statistics per project",
        "2017-02-10T10:00:00-00:00"),
    "quota-check-limit": (
        "Quota engine limit check",
        "Support for checking the resource usage before applying a new quota limit",
        "2021-09-08T16:00:00-00:00"),
    "quota-check-limit-default": (
        "Quota engine limit check by default",
        "By default, the Neutron quota engine checks the resource usage before applying a "
        "new quota limit",
        "2024-08-21T16:00:00-00:00"),
    "quotas": (
        "Quota management support",
        "Expose functions for quotas management per project",
        "2012-07-29T10:00:00-00:00"),
    "rbac-address-group": (
        "Add address_group type to RBAC",
        "Add address_group type to network RBAC",
        "2021-01-20T00:00:00-00:00"),
    "rbac-address-scope": (
        "Add address_scope type to RBAC",
        "Add address_scope type to RBAC",
        "2020-02-12T00:00:00-00:00"),
    "rbac-subnetpool": (
        "Add subnetpool type to RBAC",
        "Add subnetpool type to RBAC",
        "2020-02-05T00:00:00-00:00"),
    "rbac-policies": (
        "RBAC Policies",
        "Allows creation and modification of policies that control project access to "
        "resources.",
        "2015-06-17T12:15:12-00:00"),
    "rbac-security-groups": (
        "Add security_group type to network RBAC",
        "Add security_group type to network RBAC",
        "2019-02-14T00:00:00-00:00"),
    "revision-if-match": (
        "If-Match constraints based on revision_number",
        "Extension indicating that If-Match based on revision_number is supported.",
        "2016-12-11T00:00:00-00:00"),
    "router": (
        "Neutron L3 Router",
        "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to "
        "external networks via a NAT gateway.",
        "2012-07-20T10:00:00-00:00"),
    "router_availability_zone": (
        "Router Availability Zone",
        "Availability zone support for router.",
        "2015-01-01T10:00:00-00:00"),
    "security-group": (
        "security-group",
        "The security groups extension.",
        "2012-10-05T10:00:00-00:00"),
    "security-groups-default-rules": (
        "Default rules for security groups",
        "Configure set of security group rules used as default rules for every new security "
        "group",
        "2022-12-19T10:00:00-00:00"),
    "security-groups-remote-address-group": (
        "Remote address group id field for security group rules",
        "Add new field of remote address group id in SG rules",
        "2020-08-25T10:00:00-00:00"),
    "sorting": (
        "Sorting support",
        "Extension that indicates that sorting is enabled.",
        "2016-06-12T00:00:00-00:00"),
    "standard-attr-description": (
        "standard-attr-description",
        "Extension to add descriptions to standard attributes",
        "2016-02-10T10:00:00-00:00"),
    "standard-attr-revisions": (
        "Resource revision numbers",
        "This extension will display the revision number of neutron resources.",
        "2016-04-11T10:00:00-00:00"),
    "standard-attr-tag": (
        "Tag support for resources with standard attribute: port, subnet, network, router, "
        "floatingip, policy, security_group",
        "Enables to set tag on resources with standard attribute.",
        "2017-01-01T00:00:00-00:00"),
    "standard-attr-timestamp": (
        "Resource timestamps",
        "Adds created_at and updated_at fields to all Neutron resources that have Neutron "
        "standard attributes.",
        "2016-09-12T10:00:00-00:00"),
    "stateful-security-group": (
        "Stateful security group",
        "Indicates if the security group is stateful or not",
        "2019-11-26T09:00:00-00:00"),
    "subnet_allocation": (
        "Subnet Allocation",
        "Enables allocation of subnets from a subnet pool",
        "2015-03-30T10:00:00-00:00"),
    "subnetpool-prefix-ops": (
        "Subnet Pool Prefix Operations",
        "Provides support for adjusting the prefix list of subnet pools",
        "2019-02-08T10:00:00-00:00"),
    "subnet-service-types": (
        "Subnet service types",
        "Provides ability to set the subnet service_types field",
        "2016-03-15T18:00:00-00:00"),
    "tag-creation": (
        "Tag creation extension",
        "Allow to create multiple tags for a resource",
        "2024-23-07T10:00:00-00:00"),  # sic
    "tag-ports-during-bulk-creation": (
        "Tag Ports During Bulk Creation",
        "Allow to tag ports during bulk creation",
        "2019-12-29T19:00:00-00:00"),
    "trunk": (
        "Trunk Extension",
        "Provides support for trunk ports",
        "2016-01-01T10:00:00-00:00"),
    "trunk-details": (
        "Trunk port details",
        "Expose trunk port details",
        "2016-01-01T10:00:00-00:00"),
}
OVERCAST = {
    "overcast-firewall": "Overcast: per-rule packet and byte counters of security group rules "
                         "summed over hosts (overcast:packets, overcast:bytes) and what each "
                         "host enforces for a port (overcast:firewall)",
    "overcast-qos": "Overcast: what each host enforces of a port's QoS policy, and where "
                    "(overcast:qos)",
    "overcast-public-binding": "Overcast: a port's public host name "
                               "(overcast:public_hostname): while its VM runs, a floating IP "
                               "from the public pool and the name in the public zone point at "
                               "it (overcast:public_binding)",
    "overcast-trunk-status": "Overcast: why a trunk is not what it should be on its parent "
                             "port's host (overcast:status_reason), e.g. no 802.1Q there",
}
EXTENSIONS = {**{alias: name for alias, (name, _, _) in NEUTRON.items()}, **OVERCAST}

EXTRA_ATTRS = {
    "network": {"subnets", "availability_zones", "ipv4_address_scope", "ipv6_address_scope",
                "l2_adjacency"},
    "port": {"dns_assignment", "qos_network_policy_id",
             "propagate_uplink_status", "resource_request", "data_plane_status",
             "overcast:firewall", "overcast:qos", "overcast:public_binding", "trunk_details"},
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
    "port_forwarding": {"external_port", "internal_port"},
    "trunk": {"status", "overcast:status_reason"},
}


def _subnet_shared(ctx: Context, repo: Repo, subnet: Any) -> bool:
    """Whether the subnet's network is shared with the caller (for every
    project, or by an RBAC policy for the caller's)."""
    network = repo.get(Network, subnet.network_id)
    return network is not None and (network.shared or grants.SHARED in grants.of(repo)(
        network.id, ctx.project_id))


# filters on what is never shown (neutron-lib: is_visible False, is_filter True)
HiddenFilter = Callable[[Context, Repo, Any], Any]
HIDDEN_FILTERS: dict[str, dict[str, HiddenFilter]] = {
    "subnet": {"shared": _subnet_shared},
}


def extra_attrs(schema: Schema) -> set[str]:
    """Attributes a listing may filter and sort on that only rendering computes."""
    return EXTRA_ATTRS.get(schema.member, set()) | set(HIDDEN_FILTERS.get(schema.member, {}))


def hidden_filters(schema: Schema) -> dict[str, HiddenFilter]:
    return HIDDEN_FILTERS.get(schema.member, {})


def _extension(alias: str) -> dict[str, Any]:
    name, description, updated = NEUTRON.get(alias, (alias, EXTENSIONS[alias], UPDATED))
    return {"alias": alias, "name": name, "description": description,
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
