"""Who may do what: the API's policy in one table, as Neutron's policy file is.

Every action on every kind has a rule (``create_port``, ``get_network``,
``update_router``, ``delete_floatingip``), and so has every attribute a
request may set (``create_port:mac_address``), with sub-attributes where one
part of a value is privileged (``create_port:fixed_ips:ip_address``,
``create_router:external_gateway_info:enable_snat``).  The generic handlers
enforce the table (``authorize``); shows and listings filter by the ``get_``
rules (``visible``); rendering drops the attributes whose ``get_`` rule the
caller fails (``hidden``).  A schema attribute without its rules is a
programming error that ``tests/api/test_policy_matrix.py`` reports, and that
test drives every rule through the API for an admin, the owner and another
member, on private, shared and external networks.

The rules are Neutron's defaults (admin, owner, network owner); where Neutron
lets anyone on a shared network do something that touches the network's
owner (choose addresses and MACs, act as a router or DHCP port, switch off
port security), only the network's owner may.

What the table does not express (it needs the store): references must name
objects the caller may use (a QoS policy, a security group, a router named as
a port's device) — each kind checks those where it resolves them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from overcast.api.auth import Context
from overcast.api.errors import Forbidden, not_found
from overcast.model.types import (
    MeteringLabel,
    Network,
    QosPolicy,
    Resource,
    SecurityGroup,
)

Test = Callable[[Context, "Target", Any], bool]
# (object id, project) -> the RBAC actions granted to the project (``grants.of``)
Grants = Callable[[str, str], frozenset[str]]


class Target:
    """What a rule looks at: the object's owner, whether it is shared (itself,
    or its parent: the network of a subnet, the policy of a QoS rule), whether
    it is or is on an external network, and its parent (the network of a port
    or subnet, the group of a rule, the policy of a QoS rule), read only when
    a rule asks; and what RBAC policies grant a project on it (or on its
    parent: ``rbac_id``), read only when a rule asks."""

    __slots__ = ("owner", "_shared", "_external", "_load", "_parent", "_loaded", "_grants",
                 "rbac_id")

    def __init__(self, owner: str, shared: bool = False, external: bool = False,
                 load: Callable[[], Resource | None] | None = None,
                 grants: Grants | None = None, rbac_id: str = "") -> None:
        self.owner = owner
        self._shared, self._external = shared, external
        self._load = load
        self._parent: Resource | None = None
        self._loaded = load is None
        self._grants, self.rbac_id = grants, rbac_id

    def granted(self, project: str) -> frozenset[str]:
        """The RBAC actions granted to ``project`` (or to every project) on the object."""
        if self._grants is None or not self.rbac_id:
            return frozenset()
        return self._grants(self.rbac_id, project)

    @property
    def parent(self) -> Resource | None:
        if not self._loaded:
            assert self._load is not None
            self._parent, self._loaded = self._load(), True
        return self._parent

    @property
    def shared(self) -> bool:
        parent = self.parent if not self._shared else None
        return self._shared or (isinstance(parent, Network | QosPolicy) and parent.shared)

    @property
    def external(self) -> bool:
        parent = self.parent if not self._external else None
        return self._external or (isinstance(parent, Network) and parent.router_external
                                  and parent.external_to_all)


@dataclass(frozen=True)
class Rule:
    name: str
    test: Test

    def __call__(self, ctx: Context, target: Target, value: Any = None) -> bool:
        return self.test(ctx, target, value)

    def __or__(self, other: Rule) -> Rule:
        return Rule(f"{self.name} or {other.name}",
                    lambda c, t, v: self.test(c, t, v) or other.test(c, t, v))


def _parent_owner(ctx: Context, target: Target) -> bool:
    return target.parent is not None and target.parent.project_id == ctx.project_id


ADMIN = Rule("admin", lambda c, t, v: c.is_admin)
ANY = Rule("anyone", lambda c, t, v: True)  # anyone allowed the action itself
OWNER = Rule("owner", lambda c, t, v: c.is_admin or t.owner == c.project_id)
PARENT_OWNER = Rule("owner of the parent", lambda c, t, v: c.is_admin or _parent_owner(c, t))
SHARED = Rule("shared", lambda c, t, v: t.shared or "access_as_shared" in t.granted(c.project_id))
EXTERNAL = Rule("external network",
                lambda c, t, v: t.external or "access_as_external" in t.granted(c.project_id))
NOT_WILDCARD = Rule("admin for a target of '*'", lambda c, t, v: c.is_admin or v != "*")
NOT_NETWORK_DEVICE = Rule("not a network: device",  # device_owner network:* acts for the cloud
                          lambda c, t, v: not (isinstance(v, str) and v.startswith("network:")))


def _each(prefix: str, rule: Rule, *names: str) -> dict[str, Rule]:
    return {f"{prefix}:{n}": rule for n in names}


def _writes(member: str, rule: Rule, *names: str) -> dict[str, Rule]:
    """The same rule for setting ``names`` on create and on update."""
    return {**_each(f"create_{member}", rule, *names), **_each(f"update_{member}", rule, *names)}


_COMMON = ("name", "description", "tags")


def _creates(member: str) -> dict[str, Rule]:
    """Every kind: only an admin chooses ids (an object for another project is
    no rule's: see ``UNPOLICED``)."""
    return {f"create_{member}:id": ADMIN, **_writes(member, ANY, *_COMMON)}


def _rule_rules(member: str, *names: str) -> dict[str, Rule]:
    """A QoS rule type: the operator's to write, seen by whoever sees its policy."""
    return {f"create_{member}": ADMIN, f"get_{member}": OWNER | PARENT_OWNER | SHARED,
            f"update_{member}": ADMIN, f"delete_{member}": ADMIN, **_creates(member),
            **_writes(member, ADMIN, *names)}


RULES: dict[str, Rule] = {
    # networks: anyone makes one; sharing, external and provider details are the operator's
    "create_network": ANY,
    "get_network": OWNER | SHARED | EXTERNAL,
    "update_network": OWNER,
    "delete_network": OWNER,
    **_creates("network"),
    **_writes("network", ANY, "admin_state_up", "mtu", "port_security_enabled", "dns_domain",
              "availability_zone_hints", "qos_policy_id"),
    **_writes("network", ADMIN, "shared", "router:external", "is_default"),
    **_each("create_network", ADMIN, "provider:network_type", "provider:segmentation_id",
            "provider:physical_network"),
    **_each("get_network", ADMIN, "provider:network_type", "provider:segmentation_id",
            "provider:physical_network"),
    # subnets belong to their network's owner
    "create_subnet": PARENT_OWNER,
    "get_subnet": OWNER | SHARED,
    "update_subnet": PARENT_OWNER,
    "delete_subnet": PARENT_OWNER,
    **_creates("subnet"),
    **_each("create_subnet", ANY, "network_id", "ip_version", "cidr", "ipv6_ra_mode",
            "ipv6_address_mode", "subnetpool_id", "prefixlen", "use_default_subnetpool"),
    **_writes("subnet", ANY, "gateway_ip", "allocation_pools", "dns_nameservers",
              "host_routes", "enable_dhcp"),
    # Neutron's rules for service_types say admin, but the attribute is not one it
    # enforces rules on (no enforce_policy), so the network's owner sets them
    **_writes("subnet", ANY, "service_types"),
    # ports: on one's own or a shared network; what touches the network's owner is his,
    # who also sees and deletes every port on it, but changes only his own (Neutron's
    # get_port and delete_port: admin, owner or network owner; update_port: admin or owner)
    "create_port": PARENT_OWNER | SHARED,
    "get_port": OWNER | PARENT_OWNER,
    "update_port": OWNER,
    "delete_port": OWNER | PARENT_OWNER,
    **_creates("port"),
    "create_port:network_id": ANY,
    **_writes("port", ANY, "fixed_ips", "fixed_ips:subnet_id", "device_id", "admin_state_up",
              "binding:vnic_type", "security_groups", "dns_name", "dns_domain", "qos_policy_id",
              "extra_dhcp_opts", "overcast:public_hostname"),
    **_writes("port", NOT_NETWORK_DEVICE | PARENT_OWNER, "device_owner"),
    **_writes("port", PARENT_OWNER, "fixed_ips:ip_address", "port_security_enabled",
              "allowed_address_pairs"),
    "create_port:mac_address": PARENT_OWNER,
    "update_port:mac_address": ADMIN,
    **_writes("port", ADMIN, "binding:host_id", "binding:profile"),
    **_each("get_port", ADMIN, "binding:host_id", "binding:profile", "binding:vif_type",
            "binding:vif_details", "overcast:firewall", "overcast:qos"),  # names hosts
    # security groups and their rules: the group's owner
    "create_security_group": ANY,
    "get_security_group": OWNER | SHARED,
    "update_security_group": OWNER,
    "delete_security_group": OWNER,
    **_creates("security_group"),
    **_writes("security_group", ANY, "stateful"),
    "create_security_group_rule": PARENT_OWNER,
    "get_security_group_rule": OWNER | PARENT_OWNER,
    "delete_security_group_rule": OWNER | PARENT_OWNER,
    "update_security_group_rule": OWNER | PARENT_OWNER,  # rules change only their tags
    "update_security_group_rule:tags": ANY,
    **_creates("security_group_rule"),
    **_each("create_security_group_rule", ANY, "security_group_id", "direction", "ethertype",
            "protocol", "port_range_min", "port_range_max", "remote_ip_prefix",
            "remote_group_id", "remote_address_group_id"),
    # address groups: the owner's, seen by the projects an RBAC policy shares them with
    "create_address_group": ANY,
    "get_address_group": OWNER | SHARED,
    "update_address_group": OWNER,
    "delete_address_group": OWNER,
    "add_addresses": OWNER,
    "remove_addresses": OWNER,
    **_creates("address_group"),
    "create_address_group:addresses": ANY,
    # address scopes and subnet pools: the owner's; sharing and the defaults are the operator's
    "create_address_scope": ANY,
    "get_address_scope": OWNER | SHARED,
    "update_address_scope": OWNER,
    "delete_address_scope": OWNER,
    **_creates("address_scope"),
    "create_address_scope:ip_version": ANY,
    **_writes("address_scope", ADMIN, "shared"),
    "create_subnetpool": ANY,
    "get_subnetpool": OWNER | SHARED,
    "update_subnetpool": OWNER,
    "delete_subnetpool": OWNER,
    "add_prefixes": OWNER,
    "remove_prefixes": OWNER,
    **_creates("subnetpool"),
    **_writes("subnetpool", ANY, "prefixes", "default_prefixlen", "min_prefixlen",
              "max_prefixlen", "default_quota", "address_scope_id"),
    "create_subnetpool:shared": ADMIN,
    **_writes("subnetpool", ADMIN, "is_default"),
    # a project's auto-allocated topology: its own (an admin's for any project)
    "get_auto_allocated_topology": OWNER,
    "delete_auto_allocated_topology": OWNER,
    # routers: NAT and the external addresses are the operator's
    "create_router": ANY,
    "get_router": OWNER,
    "update_router": OWNER,
    "delete_router": OWNER,
    "add_router_interface": OWNER,
    "remove_router_interface": OWNER,
    "add_extraroutes": OWNER,
    "remove_extraroutes": OWNER,
    **_creates("router"),
    **_writes("router", ANY, "admin_state_up", "routes", "external_gateway_info",
              "external_gateway_info:network_id"),
    **_writes("router", ADMIN, "external_gateway_info:enable_snat",
              "external_gateway_info:external_fixed_ips", "distributed", "ha"),
    "create_router:availability_zone_hints": ANY,
    "get_router:distributed": ADMIN,  # Neutron's dvr policy: the operator's
    # floating IPs: the operator picks addresses
    "create_floatingip": ANY,
    "get_floatingip": OWNER,
    "update_floatingip": OWNER,
    "delete_floatingip": OWNER,
    **_creates("floatingip"),
    **_each("create_floatingip", ANY, "floating_network_id", "subnet_id", "dns_name",
            "dns_domain"),
    **_writes("floatingip", ANY, "port_id", "fixed_ip_address"),
    "create_floatingip:floating_ip_address": ADMIN,
    # QoS: policies and rules are the operator's; projects use what is shared with them
    "create_policy": ADMIN,
    "get_policy": OWNER | SHARED,
    "update_policy": ADMIN,
    "delete_policy": ADMIN,
    **_creates("policy"),
    **_writes("policy", ADMIN, "shared", "is_default"),
    **_rule_rules("bandwidth_limit_rule", "max_kbps", "max_burst_kbps", "direction"),
    **_rule_rules("dscp_marking_rule", "dscp_mark"),
    **_rule_rules("minimum_bandwidth_rule", "min_kbps", "direction"),
    # RBAC policies: their owner's; only an admin grants to every project ('*');
    # that the caller owns the object is the kind's check (Neutron's, a 400)
    "create_rbac_policy": ANY,
    "get_rbac_policy": OWNER,
    "update_rbac_policy": OWNER,
    "delete_rbac_policy": OWNER,
    **_each("create_rbac_policy", ANY, "object_type", "object_id", "action"),
    **_writes("rbac_policy", NOT_WILDCARD, "target_tenant"),
    # how full the operator's networks are
    "get_network_ip_availability": ADMIN,
    # quotas: the operator's to set; a project reads its own (quotas.py checks that)
    "get_quota": ADMIN,
    "update_quota": ADMIN,
    "delete_quota": ADMIN,
    # network segment ranges: the operator's (Neutron's defaults)
    "create_network_segment_range": ADMIN,
    "get_network_segment_range": ADMIN,
    "update_network_segment_range": ADMIN,
    "delete_network_segment_range": ADMIN,
    **_creates("network_segment_range"),
    **_writes("network_segment_range", ADMIN, "minimum", "maximum"),
    **_each("create_network_segment_range", ADMIN, "shared", "network_type",
            "physical_network"),
    # the security group rule template: the operator's, seen by everyone (role:reader)
    "create_default_security_group_rule": ADMIN,
    "get_default_security_group_rule": ANY,
    "delete_default_security_group_rule": ADMIN,
    **_creates("default_security_group_rule"),
    **_each("create_default_security_group_rule", ADMIN, "remote_group_id",
            "remote_address_group_id", "direction", "protocol", "port_range_min",
            "port_range_max", "ethertype", "remote_ip_prefix", "used_in_default_sg",
            "used_in_non_default_sg"),
    # agents (hosts) are the operator's
    "get_agent": ADMIN,
    "update_agent": ADMIN,
    "delete_agent": ADMIN,
    "update_agent:admin_state_up": ADMIN,
    **_writes("agent", ADMIN, *_COMMON),
    # port forwardings: the floating IP's owner (Neutron's ADMIN_OR_PARENT_OWNER)
    "create_floatingip_port_forwarding": OWNER,
    "get_floatingip_port_forwarding": OWNER,
    "get_port_forwarding": OWNER,  # the same, by the body's name (listings; its owner the IP's)
    "update_floatingip_port_forwarding": OWNER,
    "delete_floatingip_port_forwarding": OWNER,
    **_creates("floatingip_port_forwarding"),
    **_writes("floatingip_port_forwarding", ANY, "protocol", "internal_port_id",
              "internal_ip_address", "external_port", "internal_port", "external_port_range",
              "internal_port_range"),
    # trunks: the owner's
    "create_trunk": ANY,
    "get_trunk": OWNER,
    "update_trunk": OWNER,
    "delete_trunk": OWNER,
    "add_subports": OWNER,
    "remove_subports": OWNER,
    "get_subports": OWNER,
    **_creates("trunk"),
    **_each("create_trunk", ANY, "port_id", "sub_ports"),
    **_writes("trunk", ANY, "admin_state_up"),
    # metering: the operator's labels and rules, which their projects may read
    "create_metering_label": ADMIN,
    "get_metering_label": OWNER,
    "delete_metering_label": ADMIN,
    **_creates("metering_label"),
    "create_metering_label:shared": ADMIN,
    "create_metering_label_rule": ADMIN,
    "get_metering_label_rule": OWNER,
    "delete_metering_label_rule": ADMIN,
    **_creates("metering_label_rule"),
    **_each("create_metering_label_rule", ANY, "metering_label_id", "direction", "excluded",
            "remote_ip_prefix"),
    # logging: the operator's (Neutron's project manager role; no such role here)
    "get_loggable_resource": ADMIN,
    "create_log": ADMIN,
    "get_log": ADMIN,
    "update_log": ADMIN,
    "delete_log": ADMIN,
    **_creates("log"),
    **_each("create_log", ANY, "resource_type", "resource_id", "target_id", "event"),
    **_writes("log", ANY, "enabled"),
}

# the field naming a kind's parent, and the parent's class
PARENTS: dict[str, tuple[str, type[Resource]]] = {
    "subnet": ("network_id", Network),
    "port": ("network_id", Network),
    "security_group_rule": ("security_group_id", SecurityGroup),
    "bandwidth_limit_rule": ("policy_id", QosPolicy),
    "dscp_marking_rule": ("policy_id", QosPolicy),
    "minimum_bandwidth_rule": ("policy_id", QosPolicy),
    "metering_label_rule": ("metering_label_id", MeteringLabel),
}
PARENT_MEMBERS: dict[type[Resource], str] = {Network: "network", SecurityGroup: "security_group",
                                             QosPolicy: "policy",
                                             MeteringLabel: "metering_label"}
# the kinds RBAC policies share (their own id names them), and the kinds below one of them
RBAC_MEMBERS = frozenset({"network", "policy", "security_group", "address_group",
                          "subnetpool", "address_scope"})
RBAC_PARENTS = {"subnet": "network_id", "port": "network_id", "bandwidth_limit_rule": "policy_id",
                "dscp_marking_rule": "policy_id", "minimum_bandwidth_rule": "policy_id"}


Getter = Callable[[type[Resource], str], Any]


def target(member: str, obj: Resource | Mapping[str, Any], get: Getter | None = None,
           grants: Grants | None = None) -> Target:
    """The rule target of an object, or of the model fields of one being made
    (``grants``: what RBAC policies grant, for the rules that ask)."""
    field: Callable[[str], Any] = (obj.get if isinstance(obj, Mapping)
                                   else lambda name: getattr(obj, name, None))
    load = None
    link = PARENTS.get(member)
    if link is not None and get is not None:
        ref, cls = field(link[0]), link[1]
        load = (lambda: get(cls, ref)) if isinstance(ref, str) else (lambda: None)
    rbac = field("id") if member in RBAC_MEMBERS else field(RBAC_PARENTS.get(member, "\0"))
    external = bool(field("router_external")) and field("external_to_all") is not False
    return Target(owner=str(field("project_id") or ""), shared=bool(field("shared")),
                  external=external, load=load, grants=grants,
                  rbac_id=rbac if isinstance(rbac, str) else "")


def parent_must_be_visible(ctx: Context, member: str, fields: Mapping[str, Any],
                           get: Getter, grants: Grants | None = None) -> None:
    """404 unless the parent that a new object names exists and the caller may
    see it (a port on another project's private network: as if there were none)."""
    link = PARENTS.get(member)
    if link is None:
        return
    ref, cls = fields.get(link[0]), link[1]
    parent = get(cls, ref) if isinstance(ref, str) else None
    if parent is None or not visible(ctx, PARENT_MEMBERS[cls], get, grants)(parent):
        raise not_found(cls.KIND, str(ref))


def allowed(key: str, ctx: Context, tgt: Target, value: Any = None) -> bool:
    return RULES[key](ctx, tgt, value)


def authorize(ctx: Context, action: str, member: str, tgt: Target,
              body: Mapping[str, Any] | None = None, what: str = "") -> None:
    """403 unless the caller may do ``action`` on this object (``what`` names
    it in the message) and set every attribute of ``body`` (Neutron names,
    request values) to what it asks."""
    if ctx.read_only and action != "get":  # Keystone's reader: every write is refused
        # (Neutron's project_reader)
        on = f" on {what}" if what else ""
        raise Forbidden(f"rule:{action}_{member} is disallowed by policy{on} (allowed: admin "
                        "or member; the reader role only reads)")
    for key, value in _keys(f"{action}_{member}", body or {}):
        rule = RULES[key]
        if not rule(ctx, tgt, value):
            on = f" on {what}" if what else ""
            raise Forbidden(f"rule:{key} is disallowed by policy{on} (allowed: {rule.name})")


# attributes no rule judges, as Neutron's policy has none for them (they have no
# enforce_policy): an object's project is the caller's unless an admin names
# another, which Schema.parse checks before any rule (Neutron's
# _validate_privileges and populate_project_info, a 400)
UNPOLICED = frozenset({"project_id", "tenant_id"})


def _keys(action: str, body: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """The rules a write must pass: the action's, then each attribute's, then
    the sub-attributes that have rules of their own (a key of a dict value, or
    of the dicts of a list value)."""
    yield action, None
    for name, value in body.items():
        if name in UNPOLICED:
            continue
        yield f"{action}:{name}", value
        parts = value if isinstance(value, list) else [value]
        subkeys = {k for p in parts if isinstance(p, dict) for k in p}
        for sub in sorted(subkeys):
            key = f"{action}:{name}:{sub}"
            if key in RULES:
                yield key, [p.get(sub) for p in parts if isinstance(p, dict)]


# the kinds whose refused updates and deletes are a 404 also for a project that sees
# the object: Neutron then checks the get_ rule on the attributes the write read,
# and an address group's ``shared`` (its RBAC policies) is none of them, so a
# project the group is only shared with is told it does not exist (other kinds: 403)
WRITE_VISIBLE: dict[str, Rule] = {"address_group": OWNER}


def visible(ctx: Context, member: str, get: Getter | None = None,
            grants: Grants | None = None, writing: bool = False) -> Callable[[Any], bool]:
    """Whether the caller may see an object (shows, listings, references), or
    with ``writing`` find it to update or delete (``WRITE_VISIBLE``)."""
    rule = (WRITE_VISIBLE.get(member) if writing else None) or RULES[f"get_{member}"]
    if ctx.is_admin:
        return lambda obj: True
    return lambda obj: rule(ctx, target(member, obj, get, grants))


def named(ctx: Context, member: str, objs: list[Any], limit: int = 5) -> list[str]:
    """The ids an error message may name of ``objs``: those the caller may see
    (the ids of another project's objects using one's own are theirs)."""
    see = visible(ctx, member)
    return sorted(o.id for o in objs if see(o))[:limit]


def hidden(ctx: Context, member: str) -> frozenset[str]:
    """Attributes the caller may not see, by their ``get_<member>:<attr>`` rules
    (rules that look at the caller's role only)."""
    return _hidden(member, ctx.is_admin)


@cache
def _hidden(member: str, is_admin: bool) -> frozenset[str]:
    prefix = f"get_{member}:"
    ctx, anon = Context("\0nobody", is_admin), Target(owner="")
    return frozenset(k[len(prefix):] for k, rule in RULES.items()
                     if k.startswith(prefix) and not rule(ctx, anon))


