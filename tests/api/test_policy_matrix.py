"""The policy matrix: who may create, set and see every attribute of every kind.

Three callers — an admin, the owner (alice, a member) and another member
(bob) — and, for the kinds that live on a network, three networks of alice's:
private, shared and external.  For every attribute each schema accepts on
POST and PUT there is a sample body; each caller sends it, and the answer
must be what ``policy.RULES`` says: 404 when the caller may not see the
object (or its parent), 403 when a rule denies, else success — and nothing
written when refused.  ``test_every_attribute_has_its_rules`` makes the next
attribute declare its rules; ``test_neutron_reference`` pins the table to
Neutron's policy with expectations written out by hand, independent of it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from overcast.api import Api, Auth, policy
from overcast.api.auth import Context
from overcast.api.errors import Forbidden
from overcast.api.kinds import qos
from overcast.api.registry import HANDLERS
from overcast.api.repo import Repo, Snapshot
from overcast.api.resource import Schema
from overcast.model import keys, types
from overcast.model.types import Host, Network, QosPolicy, Resource
from overcast.store import MemoryStore

from .helpers import Direct, assert_error, dump

ACTORS = {"admin": Context("ops", True), "owner": Context("alice", False),
          "other": Context("bob", False)}
TOKENS = {f"t-{name}": ctx for name, ctx in ACTORS.items()}
NETS = ("private", "shared", "external")
RULE_SCHEMAS = [kind.schema for kind in qos.RULE_KINDS]
RULE_MEMBERS = tuple(s.member for s in RULE_SCHEMAS)
SCHEMAS: list[Schema] = [h.schema for h in HANDLERS.values()] + RULE_SCHEMAS
# what each kind's API can do: (schema, creates, updates)
WRITES = [(h.schema, h.create is not None, h.update is not None) for h in HANDLERS.values()] + \
    [(s, True, True) for s in RULE_SCHEMAS]


class World:
    """alice's objects: three networks with a subnet each, a port on each,
    a security group, a router with a gateway and an interface, a floating
    IP, a QoS policy of hers with a rule of each type, another without rules
    (where a second DSCP rule may go), a shared QoS policy, an agent."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.api = Api(self.store, auth=Auth(dict(TOKENS)))
        self.c = {name: Direct(self.api, f"t-{name}") for name in ACTORS}
        admin = self.c["admin"]
        self.net: dict[str, dict[str, Any]] = {}
        self.sub: dict[str, dict[str, Any]] = {}
        self.port: dict[str, dict[str, Any]] = {}
        for i, kind in enumerate(NETS):
            flags = {"shared": {"shared": True}, "external": {"router:external": True}}
            self.net[kind] = admin.network(project_id="alice", name=kind, **flags.get(kind, {}))
            self.sub[kind] = admin.subnet(
                self.net[kind]["id"], f"10.{i + 1}.0.0/24", project_id="alice",
                gateway_ip=f"10.{i + 1}.0.1",
                allocation_pools=[{"start": f"10.{i + 1}.0.10", "end": f"10.{i + 1}.0.100"}])
            self.port[kind] = admin.port(self.net[kind]["id"], project_id="alice")
        self.sg = admin.create("security_group", "security-groups", project_id="alice",
                               name="web")
        self.router = admin.create("router", "routers", project_id="alice", name="r",
                                   external_gateway_info={"network_id": self.net["external"]["id"]})
        # by a port off the gateway address: a gateway a router holds cannot move (GatewayIpInUse)
        iface = admin.port(self.net["private"]["id"], project_id="alice", fixed_ips=[
            {"subnet_id": self.sub["private"]["id"], "ip_address": "10.1.0.50"}])
        r = admin.put(f"/v2.0/routers/{self.router['id']}/add_router_interface",
                      {"port_id": iface["id"]})
        assert r.status == 200, r.body
        self.fip = admin.create("floatingip", "floatingips", project_id="alice",
                                floating_network_id=self.net["external"]["id"])
        self.qos = admin.create("policy", "qos/policies", project_id="alice", name="q")
        self.shared_qos = admin.create("policy", "qos/policies", name="sq", shared=True)
        self.bare_qos = admin.create("policy", "qos/policies", project_id="alice", name="q2")
        self.rules: dict[str, dict[str, Any]] = {}
        for member, body in (("bandwidth_limit_rule", {"max_kbps": 1000}),
                             ("dscp_marking_rule", {"dscp_mark": 8}),
                             ("minimum_bandwidth_rule", {"min_kbps": 100})):
            r = admin.post(f"/v2.0/qos/policies/{self.qos['id']}/{member}s", {member: body})
            assert r.status == 201, r.body
            self.rules[member] = r.body[member]
        self.rule = self.rules["bandwidth_limit_rule"]
        self.ag = admin.create("address_group", "address-groups", project_id="alice", name="ag",
                               addresses=["192.0.2.0/24"])
        self.rbac = admin.create("rbac_policy", "rbac-policies", project_id="alice",
                                 object_type="network", object_id=self.net["private"]["id"],
                                 action="access_as_shared", target_tenant="carol")
        self._newer_kinds(admin)
        host = Host(id="h1", host="h1", underlay_ip="198.18.0.1")
        self.store.put(keys.host("h1"), json.dumps(host.to_stored()).encode())

    def _newer_kinds(self, admin: Direct) -> None:
        self.scope = admin.create("address_scope", "address-scopes", project_id="alice",
                                  name="as", ip_version=4)
        self.pool = admin.create("subnetpool", "subnetpools", project_id="alice", name="sp",
                                 prefixes=["10.140.0.0/16"], default_prefixlen=24)
        self.pool6 = admin.create("subnetpool", "subnetpools", project_id="alice", name="sp6",
                                  prefixes=["2001:db8:77::/48"], is_default=True)
        self.segrange = admin.create("network_segment_range", "network_segment_ranges",
                                     network_type="vxlan", minimum=5000, maximum=5009)
        # a trunk on a port of its own (a subport for samples), a metering label, a log
        self.trunk_port = admin.port(self.net["private"]["id"], project_id="alice")
        self.sub_port = admin.port(self.net["private"]["id"], project_id="alice")
        self.trunk = admin.create("trunk", "trunks", project_id="alice",
                                  port_id=self.trunk_port["id"])
        self.label = admin.create("metering_label", "metering/metering-labels",
                                  project_id="alice", name="m")
        self.log = admin.create("log", "log/logs", project_id="alice",
                                resource_type="security_group")

    def get(self, cls: type[Resource], id_: str) -> Any:
        return Repo(Snapshot(self.store)).get(cls, id_)


@dataclass(frozen=True)
class Case:
    member: str
    action: str  # create | update
    attr: str
    body: Sample  # (world, network kind) -> body
    # the object a create is below / the object an update changes, by network kind
    on_network: bool = False
    ok: tuple[int, ...] = (200, 201)  # what success looks like for this sample
    refs_alice: bool = False  # names an object only alice and an admin may see
    note: str = ""
    variants: tuple[str, ...] = field(default=("",))

    @property
    def id(self) -> str:
        return f"{self.action}_{self.member}:{self.attr}{self.note}"


def _n(kind: str) -> int:
    return NETS.index(kind) + 1


Sample = Callable[..., dict[str, Any]]  # (world, network kind, action) -> body
UUID = "6f0e7a9c-0000-4000-8000-0000000000aa"
SAMPLES: dict[tuple[str, str], list[tuple[str, Sample]]] = {}


def sample(member: str, attr: str, note: str = "") -> Callable[[Sample],
                                                                 Sample]:
    def register(fn: Sample) -> Sample:
        SAMPLES.setdefault((member, attr), []).append((note, fn))
        return fn
    return register


def _values(member: str, values: dict[str, Any]) -> None:
    for attr, value in values.items():
        SAMPLES.setdefault((member, attr), []).append(("", lambda w, k, *_, a=attr, v=value: {a: v}))


COMMON = {"name": "n", "description": "d", "tags": ["t"]}
for _member in ("network", "subnet", "port", "security_group", "security_group_rule", "router",
                "floatingip", "policy", *RULE_MEMBERS, "address_group", "address_scope",
                "subnetpool", "trunk",
                "metering_label", "metering_label_rule", "log"):
    _values(_member, {**COMMON, "id": UUID, "project_id": "alice", "tenant_id": "alice"})
_values("network", {"admin_state_up": False, "shared": True, "router:external": True, "mtu": 1400,
                    "port_security_enabled": False, "dns_domain": "example.org.",
                    "availability_zone_hints": ["nova"], "provider:network_type": "local",
                    "is_default": True})
# a physical network belongs to a flat network (one flat network per physical network)
sample("network", "provider:physical_network")(lambda w, k, *_: {
    "provider:network_type": "flat", "provider:physical_network": f"physnet-{uuid.uuid4().hex[:8]}"})
sample("network", "provider:segmentation_id")(lambda w, k, *_: {
    "provider:network_type": "vxlan", "provider:segmentation_id": 4242})
sample("network", "qos_policy_id")(lambda w, k, *_: {"qos_policy_id": w.shared_qos["id"]})
_values("subnet", {"ip_version": 4, "enable_dhcp": False})
sample("subnet", "network_id")(lambda w, k, *_: {"network_id": w.net[k]["id"]})
sample("subnet", "cidr")(lambda w, k, *_: {"cidr": "10.77.0.0/24"})
sample("subnet", "service_types")(lambda w, k, *_: {"service_types": ["network:floatingip"]})
def _in(k: str, action: str) -> int:
    """The second octet of the subnet a sample is for: the one being made, or the kind's."""
    return 77 if action == "create" else _n(k)


sample("subnet", "gateway_ip")(lambda w, k, a: {"gateway_ip": f"10.{_in(k, a)}.0.200"})
sample("subnet", "allocation_pools")(lambda w, k, a: {"allocation_pools": [
    {"start": f"10.{_in(k, a)}.0.10", "end": f"10.{_in(k, a)}.0.150"}]})
sample("subnet", "dns_nameservers")(lambda w, k, *_: {"dns_nameservers": ["192.0.2.53"]})
sample("subnet", "host_routes")(lambda w, k, a: {"host_routes": [
    {"destination": "192.0.2.0/24", "nexthop": f"10.{_in(k, a)}.0.9"}]})
for _mode in ("ipv6_ra_mode", "ipv6_address_mode"):
    sample("subnet", _mode)(lambda w, k, *_, m=_mode: {m: "slaac", "ip_version": 6,
                                                  "cidr": "2001:db8:77::/64"})
sample("subnet", "subnetpool_id")(lambda w, k, *_: {"subnetpool_id": w.pool6["id"],
                                                  "ip_version": 6, "cidr": "2001:db8:77::/64"})
sample("subnet", "prefixlen")(lambda w, k, *_: {"subnetpool_id": w.pool6["id"], "cidr": None,
                                              "ip_version": 6, "prefixlen": 64})
sample("subnet", "use_default_subnetpool")(lambda w, k, *_: {
    "use_default_subnetpool": True, "cidr": None, "ip_version": 6})
_values("address_scope", {"shared": True, "ip_version": 6})
_values("subnetpool", {"default_prefixlen": 26, "min_prefixlen": 12, "max_prefixlen": 28,
                       "default_quota": 4096, "shared": True, "is_default": True,
                       "prefixes": ["10.140.0.0/16", "10.141.0.0/16"]})
sample("subnetpool", "address_scope_id")(lambda w, k, *_: {"address_scope_id": w.scope["id"]})
_values("port", {"device_id": "vm-1", "admin_state_up": False, "binding:host_id": "h1",
                 "binding:vnic_type": "normal", "binding:profile": {"k": "v"},
                 "security_groups": [], "dns_name": "vm1", "dns_domain": "example.org."})
sample("port", "network_id")(lambda w, k, *_: {"network_id": w.net[k]["id"]})
sample("port", "mac_address")(lambda w, k, *_: {"mac_address": "fa:16:3e:77:00:01"})
sample("port", "fixed_ips")(lambda w, k, *_: {"fixed_ips": [{"subnet_id": w.sub[k]["id"]}]})
sample("port", "fixed_ips", "+ip_address")(lambda w, k, *_: {"fixed_ips": [
    {"subnet_id": w.sub[k]["id"], "ip_address": f"10.{_n(k)}.0.77"}]})
sample("port", "device_owner")(lambda w, k, *_: {"device_owner": "compute:nova"})
sample("port", "device_owner", "=network:dhcp")(lambda w, k, *_: {"device_owner": "network:dhcp"})
sample("port", "port_security_enabled")(lambda w, k, *_: {"port_security_enabled": False,
                                                      "security_groups": []})
sample("port", "allowed_address_pairs")(lambda w, k, *_: {"allowed_address_pairs": [
    {"ip_address": f"10.{_n(k)}.0.200"}]})
sample("port", "qos_policy_id")(lambda w, k, *_: {"qos_policy_id": w.shared_qos["id"]})
sample("port", "extra_dhcp_opts")(lambda w, k, *_: {"extra_dhcp_opts": [
    {"opt_name": "tftp-server", "opt_value": "10.0.0.9"}]})
sample("port", "overcast:public_hostname")(lambda w, k, *_: {
    "overcast:public_hostname": f"vm{_n(k)}.cloud.example"})
_values("security_group", {"stateful": False})
_values("security_group_rule", {"ethertype": "IPv6", "remote_ip_prefix": "192.0.2.0/24"})
sample("security_group_rule", "direction")(lambda w, k, *_: {"direction": "egress", "protocol": "udp"})
sample("security_group_rule", "security_group_id")(lambda w, k, *_: {"security_group_id": w.sg["id"]})
for _p in ("protocol", "port_range_min", "port_range_max"):
    sample("security_group_rule", _p)(lambda w, k, *_: {"protocol": "tcp", "port_range_min": 22,
                                                    "port_range_max": 22})
sample("security_group_rule", "remote_group_id")(lambda w, k, *_: {"remote_group_id": w.sg["id"]})
sample("security_group_rule", "remote_address_group_id")(lambda w, k, *_: {
    "remote_address_group_id": w.ag["id"]})
_values("address_group", {"addresses": ["198.51.100.0/24", "2001:db8::/64"]})
_values("router", {"admin_state_up": False, "routes": [], "distributed": True, "ha": True,
                   "availability_zone_hints": ["nova"]})  # h1's zone
_values("network_segment_range", {**COMMON, "id": UUID, "project_id": "alice",
                                  "tenant_id": "alice", "shared": False,
                                  "network_type": "vxlan", "physical_network": "physnet1"})
sample("network_segment_range", "minimum")(lambda w, k, a: {"minimum": 6000 if a == "create"
                                                            else 5001})
sample("network_segment_range", "maximum")(lambda w, k, a: {"maximum": 6009 if a == "create"
                                                            else 5020})
_values("default_security_group_rule", {"description": "d", "tenant_id": "alice",
                                        "ethertype": "IPv6", "remote_ip_prefix": "192.0.2.0/24",
                                        "remote_group_id": "PARENT", "used_in_default_sg": True,
                                        "used_in_non_default_sg": False})
sample("default_security_group_rule", "direction")(lambda w, k, *_: {"direction": "egress",
                                                                     "protocol": "udp"})
for _p in ("protocol", "port_range_min", "port_range_max"):
    sample("default_security_group_rule", _p)(lambda w, k, *_: {
        "protocol": "tcp", "port_range_min": 22, "port_range_max": 22})
sample("default_security_group_rule", "remote_address_group_id")(lambda w, k, *_: {
    "remote_address_group_id": w.ag["id"]})
sample("router", "external_gateway_info")(lambda w, k, *_: {"external_gateway_info": {
    "network_id": w.net["external"]["id"]}})
sample("router", "external_gateway_info", "+enable_snat")(lambda w, k, *_: {"external_gateway_info": {
    "network_id": w.net["external"]["id"], "enable_snat": False}})
sample("router", "external_gateway_info", "+external_fixed_ips")(lambda w, k, *_: {
    "external_gateway_info": {"network_id": w.net["external"]["id"],
                              "external_fixed_ips": [{"subnet_id": w.sub["external"]["id"]}]}})
_values("floatingip", {"dns_name": "www", "dns_domain": "example.org."})
sample("floatingip", "floating_network_id")(lambda w, k, *_: {"floating_network_id":
                                                          w.net["external"]["id"]})
sample("floatingip", "floating_ip_address")(lambda w, k, *_: {"floating_ip_address": "10.3.0.88"})
sample("floatingip", "subnet_id")(lambda w, k, *_: {"subnet_id": w.sub["external"]["id"]})
sample("floatingip", "port_id")(lambda w, k, *_: {"port_id": w.port["private"]["id"]})
sample("floatingip", "fixed_ip_address")(lambda w, k, *_: {
    "port_id": w.port["private"]["id"],
    "fixed_ip_address": w.port["private"]["fixed_ips"][0]["ip_address"]})
_values("policy", {"shared": True, "is_default": False})
_values("bandwidth_limit_rule", {"max_kbps": 2000, "max_burst_kbps": 100})
sample("bandwidth_limit_rule", "direction")(lambda w, k, *_: {"direction": "ingress"})
_values("dscp_marking_rule", {"dscp_mark": 46})
_values("minimum_bandwidth_rule", {"min_kbps": 500})
sample("minimum_bandwidth_rule", "direction")(lambda w, k, *_: {"direction": "ingress"})
_values("agent", {**COMMON, "admin_state_up": False})
_values("trunk", {"admin_state_up": False})
sample("trunk", "port_id")(lambda w, k, *_: {"port_id": w.port["private"]["id"]})
sample("trunk", "sub_ports")(lambda w, k, *_: {"sub_ports": [
    {"port_id": w.sub_port["id"], "segmentation_type": "vlan", "segmentation_id": 7}]})
_values("metering_label", {"shared": True})
_values("metering_label_rule", {"direction": "egress", "excluded": True,
                                "remote_ip_prefix": "10.5.0.0/24"})
sample("metering_label_rule", "metering_label_id")(lambda w, k, *_: {
    "metering_label_id": w.label["id"]})
_values("log", {"resource_type": "security_group", "event": "DROP", "enabled": False})
sample("log", "resource_id")(lambda w, k, *_: {"resource_id": w.sg["id"]})
sample("log", "target_id")(lambda w, k, *_: {"target_id": w.port["private"]["id"]})
_values("rbac_policy", {"project_id": "alice", "tenant_id": "alice", "object_type": "network",
                        "action": "access_as_external", "target_tenant": "*"})
sample("rbac_policy", "target_tenant", "=project")(lambda w, k, *_: {"target_tenant": "dave"})
sample("rbac_policy", "object_id")(lambda w, k, *_: {"object_id": w.net["private"]["id"]})

# what a create needs besides the attribute under test
BASE: dict[str, Sample] = {
    "subnet": lambda w, k, *_: {"network_id": w.net[k]["id"], "cidr": "10.77.0.0/24"},
    "port": lambda w, k, *_: {"network_id": w.net[k]["id"]},
    "security_group_rule": lambda w, k, *_: {"security_group_id": w.sg["id"], "direction": "ingress"},
    "floatingip": lambda w, k, *_: {"floating_network_id": w.net["external"]["id"]},
    "bandwidth_limit_rule": lambda w, k, *_: {"max_kbps": 1000, "direction": "ingress"},
    "dscp_marking_rule": lambda w, k, *_: {"dscp_mark": 10},
    "minimum_bandwidth_rule": lambda w, k, *_: {"min_kbps": 100, "direction": "ingress"},
    "address_scope": lambda w, k, *_: {"ip_version": 4},
    "subnetpool": lambda w, k, *_: {"name": "sp2", "prefixes": ["10.150.0.0/16"]},
    "network_segment_range": lambda w, k, *_: {"network_type": "vxlan", "minimum": 6000,
                                               "maximum": 6009},
    "default_security_group_rule": lambda w, k, *_: {
        "direction": "ingress", "protocol": "tcp", "port_range_min": 8000,
        "port_range_max": 8000, "used_in_default_sg": False, "used_in_non_default_sg": True},
    "trunk": lambda w, k, *_: {"port_id": w.port["private"]["id"]},
    "metering_label_rule": lambda w, k, *_: {"metering_label_id": w.label["id"],
                                             "direction": "ingress",
                                             "remote_ip_prefix": "10.0.0.0/24"},
    "log": lambda w, k, *_: {"resource_type": "security_group"},
    "rbac_policy": lambda w, k, *_: {"object_type": "network", "object_id": w.net["private"]["id"],
                                     "action": "access_as_shared", "target_tenant": "erin"},
}
ON_NETWORK = ("subnet", "port")
# samples that name one of alice's objects which only she and an admin may see
REFS_ALICE = {("floatingip", "port_id"), ("floatingip", "fixed_ip_address"),
              ("security_group_rule", "remote_group_id"),
              ("security_group_rule", "remote_address_group_id"),
              ("subnetpool", "address_scope_id")} | {
    # a trunk's create names one of alice's ports (its parent): bob has no such port (the
    # policy answers first where it denies: id, project_id)
    ("trunk", a) for a in ("name", "description", "tags", "port_id", "admin_state_up",
                           "sub_ports")}
# samples that are refused whoever sends them, past the policy (not supported)
REFUSED: dict[tuple[str, str], int] = {}
# creates refused past the policy for some callers: only the owner of the object (or an
# admin) makes an RBAC policy on it, and alice's private network is not bob's to see
REFUSED_FOR = {("rbac_policy", "create"): {"other": 404}}


def _rule_policy(w: World, member: str, action: str) -> dict[str, Any]:
    """The policy a rule sample goes below: a new DSCP rule to the one without
    rules (a policy has one at most), everything else to alice's ``q``."""
    return w.bare_qos if (member, action) == ("dscp_marking_rule", "create") else w.qos


def _path(w: World, member: str, action: str, kind: str) -> str:
    if member in RULE_MEMBERS:
        base = f"/v2.0/qos/policies/{_rule_policy(w, member, action)['id']}/{member}s"
        return base if action == "create" else f"{base}/{w.rules[member]['id']}"
    schema = next(s for s in SCHEMAS if s.member == member)
    if action == "create":
        return schema.path
    obj = {"network": w.net[kind], "subnet": w.sub[kind], "port": w.port[kind],
           "security_group": w.sg, "router": w.router, "floatingip": w.fip,
           "policy": w.qos, "agent": {"id": "h1"}, "address_group": w.ag,
           "address_scope": w.scope, "subnetpool": w.pool,
           "network_segment_range": w.segrange,
           "trunk": w.trunk, "log": w.log, "rbac_policy": w.rbac}[member]
    return f"{schema.path}/{obj['id']}"


def _writable(schema: Schema, creates: bool, updates: bool) -> list[tuple[str, str]]:
    """(action, attribute) for every attribute a request may set."""
    return [(action, attr.name) for attr in schema.attrs
            for action, ok in (("create", creates and attr.post), ("update", updates and attr.put))
            if ok]


def _cases() -> list[tuple[str, str, str, str, str]]:
    out = []
    for schema, creates, updates in WRITES:
        for action, name in _writable(schema, creates, updates):
            on_nets = schema.member in ON_NETWORK or (schema.member == "network"
                                                      and action == "update")
            for note, _fn in SAMPLES.get((schema.member, name), []):
                for kind in NETS if on_nets else ("private",):
                    out.append((schema.member, action, name, note, kind))
    return out


def _expected(w: World, actor: str, member: str, action: str, kind: str,
              body: dict[str, Any], attr: str) -> int:
    """What the table says: 404 (cannot see), 403 (a rule denies) or 0 (allowed);
    400 for a member naming another project (Neutron's check before any rule)."""
    ctx = ACTORS[actor]
    get = w.get
    unseen = False  # a rule's policy the caller may not see
    named = body.get("project_id") or body.get("tenant_id")
    if action == "create" and named and named != ctx.project_id and not ctx.is_admin:
        return 400
    if action == "create":
        fields = {"project_id": body.get("project_id") or body.get("tenant_id") or ctx.project_id,
                  **{k: v for k, v in body.items() if k in ("network_id", "security_group_id",
                                                            "metering_label_id")}}
        if member in RULE_MEMBERS:  # the policy judges first, then the parent is looked up
            fields["policy_id"] = _rule_policy(w, member, action)["id"]
            unseen = not policy.visible(ctx, "policy")(w.get(QosPolicy, fields["policy_id"]))
        link = policy.PARENTS.get(member)
        if link is not None and member not in RULE_MEMBERS:
            parent = get(link[1], fields[link[0]])
            if not policy.visible(ctx, policy.PARENT_MEMBERS[link[1]], get)(parent):
                return 404
        tgt = policy.target(member, fields, get)
    else:
        obj = _current(w, member, kind)
        if not policy.visible(ctx, member if member not in RULE_MEMBERS else "policy",
                              get, writing=True)(obj if member not in RULE_MEMBERS
                                                 else w.get(QosPolicy, w.qos["id"])):
            return 404
        tgt = policy.target(member, obj, get)
    if (member, attr) in REFS_ALICE and actor == "other":
        return 404
    if action == "create":  # an attribute given its default asks for nothing
        schema = next(s for s in SCHEMAS if s.member == member)
        parse = HANDLERS[schema.collection].parse_body if schema.collection in HANDLERS \
            else lambda c, b, creating: schema.parse(c, b, creating)
        body = schema.explicit(body, parse(ctx, body, True))
    try:
        policy.authorize(ctx, action, member, tgt, body)
    except Forbidden:
        return 403
    if unseen:
        return 404
    return REFUSED_FOR.get((member, action), {}).get(actor, 0)


def _current(w: World, member: str, kind: str) -> Any:
    cls = {"network": types.Network, "subnet": types.Subnet, "port": types.Port,
           "security_group": types.SecurityGroup, "router": types.Router,
           "floatingip": types.FloatingIP, "policy": types.QosPolicy,
           "bandwidth_limit_rule": types.BandwidthLimitRule,
           "dscp_marking_rule": types.DscpMarkingRule,
           "minimum_bandwidth_rule": types.MinimumBandwidthRule,
           "address_group": types.AddressGroup, "address_scope": types.AddressScope,
           "subnetpool": types.SubnetPool,
           "network_segment_range": types.NetworkSegmentRange,
           "trunk": types.Trunk, "log": types.NetworkLog,
           "rbac_policy": types.RbacPolicy}.get(member)
    if member == "agent":
        return Repo(Snapshot(w.store)).get(Host, "h1")
    ident = {"network": w.net[kind], "subnet": w.sub[kind], "port": w.port[kind],
             "security_group": w.sg, "router": w.router, "floatingip": w.fip,
             "policy": w.qos, "address_group": w.ag, "address_scope": w.scope,
             "subnetpool": w.pool, "network_segment_range": w.segrange,
             "trunk": w.trunk, "log": w.log,
             "rbac_policy": w.rbac,
             **w.rules}[member]["id"]
    assert cls is not None
    return w.get(cls, ident)


@pytest.fixture(scope="module")
def pristine() -> World:
    return World()


@pytest.mark.parametrize("member,action,attr,note,kind", _cases(),
                         ids=lambda v: str(v))
def test_matrix(member: str, action: str, attr: str, note: str, kind: str) -> None:
    w = World()
    fn = dict(SAMPLES[(member, attr)])[note]
    for actor in ACTORS:
        body = {**(BASE[member](w, kind) if action == "create" and member in BASE else {}),
                **fn(w, kind, action)}
        expect = _expected(w, actor, member, action, kind, body, attr)
        before = dump(w.store)
        path = _path(w, member, action, kind)
        r = (w.c[actor].post(path, {member: body}) if action == "create"
             else w.c[actor].put(path, {member: body}))
        where = (actor, kind, body, r.status, r.body)
        if expect:
            assert r.status == expect, where
            assert dump(w.store) == before, where
        elif (member, attr) in REFUSED:
            assert r.status == REFUSED[(member, attr)], where
        else:
            assert r.status in (200, 201), where
            w = World()  # the next caller starts from the same world


def test_every_attribute_has_its_rules() -> None:
    """Each action of each kind and each attribute it accepts names its rule,
    and each has a sample in this matrix."""
    missing, unsampled = [], []
    for h in HANDLERS.values():
        m = h.schema.member
        actions = ["get"] + [a for a, f in (("create", h.create), ("update", h.update),
                                              ("delete", h.delete)) if f is not None]
        missing += [f"{a}_{m}" for a in actions if f"{a}_{m}" not in policy.RULES]
        if h.tags:  # the tags sub-resource changes an object as an update with tags does
            missing += [k for k in (f"update_{m}", f"update_{m}:tags") if k not in policy.RULES]
    for schema, creates, updates in WRITES:
        for action, name in _writable(schema, creates, updates):
            if (f"{action}_{schema.member}:{name}" not in policy.RULES
                    and name not in policy.UNPOLICED):
                missing.append(f"{action}_{schema.member}:{name}")
            if (schema.member, name) not in SAMPLES:
                unsampled.append(f"{schema.member}.{name}")
    assert not missing, f"attributes without a policy rule: {missing}"
    assert not unsampled, f"attributes without a sample in the matrix: {unsampled}"


def test_no_rule_judges_the_project() -> None:
    """Neutron's policy has no rule on project_id or tenant_id: a member
    naming another project is a 400 before any rule (_validate_privileges),
    a body naming two projects a 400 for anyone (populate_project_info),
    whichever key comes first; the rules that judged them could never deny."""
    dead = [k for k in policy.RULES if k.rpartition(":")[2] in policy.UNPOLICED]
    assert dead == []
    w = World()
    before = dump(w.store)
    for actor in ACTORS:
        for body in ({"project_id": "alice", "tenant_id": "bob"},
                     {"tenant_id": "bob", "project_id": "alice"}):
            assert_error(w.c[actor].post("/v2.0/networks", {"network": {"name": "n", **body}}),
                         400, "'project_id' and 'tenant_id' do not match")
    assert_error(w.c["owner"].post("/v2.0/networks", {"network": {"tenant_id": "bob"}}), 400,
                 "Specifying 'project_id' other than the authenticated project")
    assert dump(w.store) == before
    made = w.c["admin"].create("network", "networks", project_id="bob", tenant_id="bob")
    assert made["project_id"] == "bob"
    assert w.c["owner"].create("network", "networks", tenant_id="alice")["project_id"] == "alice"


def test_visibility(pristine: World) -> None:
    """Who sees what: each caller's GET of each object, as the get_ rules say,
    and the attributes members must not see are not in their answers."""
    w = pristine
    objects = [("network", k) for k in NETS] + [("subnet", k) for k in NETS] + \
        [("port", k) for k in NETS] + [(m, "private") for m in
                                       ("security_group", "router", "floatingip", "policy",
                                        "agent", "address_group", "address_scope",
                                        "subnetpool")]
    for member, kind in objects:
        schema = next(s for s in SCHEMAS if s.member == member)
        obj = _current(w, member, kind)
        for actor, ctx in ACTORS.items():
            r = w.c[actor].get(f"{schema.path}/{obj.id}")
            sees = policy.visible(ctx, member, w.get)(obj)
            assert r.status == (200 if sees else 404), (member, kind, actor, r.body)
            listed = w.c[actor].get(schema.path).body[schema.collection]
            assert (obj.id in {o["id"] for o in listed}) == sees, (member, kind, actor)
            if sees:
                shown = set(r.body[member])
                assert not shown & policy.hidden(ctx, member), (member, actor)


def test_neutron_reference(pristine: World) -> None:
    """The table against Neutron's policy, written out by hand: who may see
    each network, and who may set the privileged attributes."""
    w = pristine
    see = {  # (network kind): which callers may see alice's network
        "private": {"admin", "owner"}, "shared": {"admin", "owner", "other"},
        "external": {"admin", "owner", "other"}}
    for kind, allowed in see.items():
        for actor in ACTORS:
            r = w.c[actor].get(f"/v2.0/networks/{w.net[kind]['id']}")
            assert (r.status == 200) == (actor in allowed), (kind, actor)
    admin_only = [("network", "shared"), ("network", "router:external"),
                  ("network", "provider:network_type"), ("port", "binding:host_id"),
                  ("router", "distributed"), ("floatingip", "floating_ip_address"),
                  ("policy", "shared"), ("policy", "is_default")]
    for member, attr in admin_only:
        key = f"create_{member}:{attr}"
        assert policy.RULES[key] is policy.ADMIN, key
    assert policy.RULES["update_port:mac_address"] is policy.ADMIN
    assert policy.RULES["create_policy"] is policy.ADMIN
    for attr in ("mac_address", "fixed_ips:ip_address", "port_security_enabled",
                 "allowed_address_pairs"):
        rule = policy.RULES[f"create_port:{attr}"]
        shared = policy.Target("bob", shared=True, load=lambda: _net(w, "shared"))
        assert not rule(ACTORS["other"], shared), attr  # bob, on alice's shared network
        assert rule(ACTORS["owner"], shared), attr
    rule = policy.RULES["create_port:device_owner"]
    tgt = policy.Target("bob", shared=True, load=lambda: _net(w, "shared"))
    assert not rule(ACTORS["other"], tgt, "network:dhcp")
    assert rule(ACTORS["other"], tgt, "compute:nova")
    assert_error(w.c["other"].post("/v2.0/ports", {"port": {
        "network_id": w.net["shared"]["id"], "device_owner": "network:router_interface"}}),
        403, "create_port:device_owner", type="PolicyNotAuthorized")


def test_neutron_reference_for_a_port_on_anothers_network() -> None:
    """Neutron's get_port and delete_port admit the network's owner, its
    update_port does not: who may see, change and delete bob's port on
    alice's shared network, written out by hand, and the table agrees."""
    w = World()
    port = w.c["other"].port(w.net["shared"]["id"])
    path, obj = f"/v2.0/ports/{port['id']}", w.get(types.Port, port["id"])
    sees = {"admin", "owner", "other"}  # alice, the network's owner, too
    changes = {"admin", "other"}
    for actor, ctx in ACTORS.items():
        assert policy.visible(ctx, "port", w.get)(obj) == (actor in sees), actor
        assert (w.c[actor].get(path).status == 200) == (actor in sees), actor
        listed = {p["id"] for p in w.c[actor].get("/v2.0/ports")["ports"]}
        assert (port["id"] in listed) == (actor in sees), actor
        tgt = policy.target("port", obj, w.get)
        assert policy.allowed("update_port", ctx, tgt) == (actor in changes), actor
        assert policy.allowed("delete_port", ctx, tgt) == (actor in sees), actor
    before = dump(w.store)
    assert_error(w.c["owner"].put(path, {"port": {"name": "n"}}), 403, "update_port",
                 type="PolicyNotAuthorized")
    assert dump(w.store) == before
    assert w.c["owner"].delete(path).status == 204


def _net(w: World, kind: str) -> Network:
    net = w.get(Network, w.net[kind]["id"])
    assert isinstance(net, Network)
    return net
