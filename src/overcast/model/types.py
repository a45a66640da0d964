"""The logical model: what the cloud's networks are, independent of the API's
wire shapes and of how the store encodes them.

Every class maps to and from its stored value (a JSON-able dict) with
``to_stored``/``from_stored``.  The API maps Neutron request/response bodies
to these; the planner reads only these.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeVar

T = TypeVar("T", bound="Resource")

# the device_owner of a router's ports (Neutron's values)
ROUTER_INTERFACE = "network:router_interface"
ROUTER_GATEWAY = "network:router_gateway"
# the port on one of a router's subnets that its SNAT host answers on: the other hosts' routers
# send traffic without a floating IP there (Neutron DVR's router_centralized_snat)
ROUTER_SNAT = "network:router_centralized_snat"


@dataclass(frozen=True, slots=True)
class FixedIP:
    subnet_id: str
    ip_address: str


@dataclass(frozen=True, slots=True)
class AllocationPool:
    start: str
    end: str


@dataclass(frozen=True, slots=True)
class HostRoute:
    destination: str
    nexthop: str


@dataclass(frozen=True, slots=True)
class AddressPair:
    ip_address: str
    mac_address: str


@dataclass(frozen=True, slots=True)
class ExtraDhcpOpt:
    """One of a port's extra DHCP options (Neutron's ``extra_dhcp_opt``
    extension): an option by dnsmasq name or number, its value as text
    (``None``: the option is not sent), for DHCPv4 (4) or DHCPv6 (6)."""

    opt_name: str
    opt_value: str | None
    ip_version: int = 4


@dataclass(frozen=True, slots=True)
class Resource:
    """Fields every object has."""

    KIND: ClassVar[str] = ""
    NESTED: ClassVar[dict[str, type]] = {}

    id: str
    project_id: str = ""
    name: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    created_at: str = ""
    updated_at: str = ""
    revision_number: int = 0

    def to_stored(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            out[f.name] = _plain(getattr(self, f.name))
        return out

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> Self:
        names = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in names:
                continue
            nested = cls.NESTED.get(key)
            if nested is not None and isinstance(value, list):
                value = tuple(nested(**v) if isinstance(v, dict) else v for v in value)
            elif isinstance(value, list):
                value = tuple(value)
            kwargs[key] = value
        return cls(**kwargs)

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class Network(Resource):
    KIND: ClassVar[str] = "network"

    network_type: str = "vxlan"  # vxlan | local | flat
    segmentation_id: int | None = None
    physical_network: str | None = None
    mtu: int = 1450
    router_external: bool = False
    shared: bool = False
    admin_state_up: bool = True
    status: str = "ACTIVE"
    port_security_enabled: bool = True
    dns_domain: str = ""
    availability_zone_hints: tuple[str, ...] = ()
    qos_policy_id: str | None = None
    is_default: bool = False  # the default external network (auto-allocated-topology)
    # while router_external: whether every project may use it (an access_as_external
    # RBAC policy for '*'); False when only the projects of targeted policies may
    external_to_all: bool = True


@dataclass(frozen=True, slots=True)
class Subnet(Resource):
    KIND: ClassVar[str] = "subnet"
    NESTED: ClassVar[dict[str, type]] = {
        "allocation_pools": AllocationPool,
        "host_routes": HostRoute,
    }

    network_id: str = ""
    ip_version: int = 4
    cidr: str = ""
    gateway_ip: str | None = None
    allocation_pools: tuple[AllocationPool, ...] = ()
    dns_nameservers: tuple[str, ...] = ()
    host_routes: tuple[HostRoute, ...] = ()
    enable_dhcp: bool = True
    # Neutron's subnet-service-types: the device_owners this subnet's addresses are for
    # (none: any port whose network has no subnet for its owner)
    service_types: tuple[str, ...] = ()
    ipv6_ra_mode: str | None = None
    ipv6_address_mode: str | None = None
    subnetpool_id: str | None = None


@dataclass(frozen=True, slots=True)
class Port(Resource):
    KIND: ClassVar[str] = "port"
    NESTED: ClassVar[dict[str, type]] = {
        "fixed_ips": FixedIP,
        "allowed_address_pairs": AddressPair,
        "extra_dhcp_opts": ExtraDhcpOpt,
    }

    network_id: str = ""
    mac_address: str = ""
    fixed_ips: tuple[FixedIP, ...] = ()
    device_id: str = ""
    device_owner: str = ""
    admin_state_up: bool = True
    binding_host_id: str = ""
    binding_vnic_type: str = "normal"
    binding_profile: dict[str, Any] = field(default_factory=dict)
    security_groups: tuple[str, ...] = ()
    port_security_enabled: bool = True
    allowed_address_pairs: tuple[AddressPair, ...] = ()
    dns_name: str = ""
    dns_domain: str = ""  # Neutron's dns-domain-ports: for external DNS, not dns_assignment
    qos_policy_id: str | None = None
    extra_dhcp_opts: tuple[ExtraDhcpOpt, ...] = ()
    # the dynamic public binding (Overcast's extension): while the port's VM runs, a
    # floating IP of the public pool and this name in the public zone point at it
    public_hostname: str = ""


@dataclass(frozen=True, slots=True)
class PortBinding:
    """One of a port's bindings (the active one, or an inactive one made for a
    live migration target)."""

    port_id: str
    host: str
    status: str = "INACTIVE"  # ACTIVE | INACTIVE
    vnic_type: str = "normal"
    profile: dict[str, Any] = field(default_factory=dict)

    def to_stored(self) -> dict[str, Any]:
        return _plain(self)  # type: ignore[no-any-return]

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> PortBinding:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class SecurityGroupRule(Resource):
    KIND: ClassVar[str] = "security_group_rule"

    security_group_id: str = ""
    direction: str = "ingress"  # ingress | egress
    ethertype: str = "IPv4"  # IPv4 | IPv6
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None
    remote_address_group_id: str | None = None


@dataclass(frozen=True, slots=True)
class SecurityGroup(Resource):
    KIND: ClassVar[str] = "security_group"

    stateful: bool = True


@dataclass(frozen=True, slots=True)
class AddressGroup(Resource):
    """Addresses a security group rule may name as its remote
    (``remote_address_group_id``): CIDRs of both families, each normalized
    as Neutron stores it (``10.0.0.1`` is ``10.0.0.1/32``), sorted."""

    KIND: ClassVar[str] = "address_group"

    addresses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Router(Resource):
    KIND: ClassVar[str] = "router"
    NESTED: ClassVar[dict[str, type]] = {"routes": HostRoute}

    admin_state_up: bool = True
    status: str = "ACTIVE"
    # {network_id, enable_snat, external_fixed_ips: [{subnet_id, ip_address}]}
    external_gateway: dict[str, Any] | None = None
    routes: tuple[HostRoute, ...] = ()
    distributed: bool = True
    ha: bool = False
    availability_zone_hints: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FloatingIP(Resource):
    KIND: ClassVar[str] = "floatingip"

    floating_network_id: str = ""
    floating_ip_address: str = ""
    floating_port_id: str = ""
    port_id: str | None = None
    fixed_ip_address: str | None = None
    router_id: str | None = None
    status: str = "DOWN"
    dns_name: str = ""
    dns_domain: str = ""


@dataclass(frozen=True, slots=True)
class QosPolicy(Resource):
    KIND: ClassVar[str] = "qos_policy"

    shared: bool = False
    is_default: bool = False


@dataclass(frozen=True, slots=True)
class BandwidthLimitRule(Resource):
    KIND: ClassVar[str] = "bandwidth_limit_rule"

    policy_id: str = ""
    max_kbps: int = 0
    max_burst_kbps: int = 0
    direction: str = "egress"  # egress | ingress


@dataclass(frozen=True, slots=True)
class DscpMarkingRule(Resource):
    KIND: ClassVar[str] = "dscp_marking_rule"

    policy_id: str = ""
    dscp_mark: int = 0  # one of Neutron's valid DSCP marks (0, 8, 10, ..., 56)


@dataclass(frozen=True, slots=True)
class MinimumBandwidthRule(Resource):
    KIND: ClassVar[str] = "minimum_bandwidth_rule"

    policy_id: str = ""
    min_kbps: int = 0
    direction: str = "egress"  # egress | ingress


@dataclass(frozen=True, slots=True)
class RbacPolicy(Resource):
    """Neutron's RBAC policy: ``action`` on the object ``object_id`` (of
    ``object_type``) granted to the project ``target_tenant``, or to every
    project (``*``)."""

    KIND: ClassVar[str] = "rbac_policy"

    object_type: str = ""  # network | qos_policy | security_group | address_group
    object_id: str = ""
    action: str = ""  # access_as_shared | access_as_external (networks)
    target_tenant: str = ""


@dataclass(frozen=True, slots=True)
class Host(Resource):
    """A hypervisor (Neutron 'agent'): written by the agent itself."""

    KIND: ClassVar[str] = "host"

    host: str = ""
    underlay_ip: str = ""
    agent_type: str = "Overcast agent"
    binary: str = "overcast-agent"
    admin_state_up: bool = True
    started_at: str = ""
    heartbeat_timestamp: str = ""
    features: dict[str, Any] = field(default_factory=dict)
    availability_zone: str = "nova"  # the agent's --availability-zone (Neutron's default)


@dataclass(frozen=True, slots=True)
class AddressScope(Resource):
    """Neutron's address scope: the subnet pools in one never overlap, so
    addresses within it are unique (``address_scope_id`` of a pool)."""

    KIND: ClassVar[str] = "address_scope"

    ip_version: int = 4
    shared: bool = False


@dataclass(frozen=True, slots=True)
class SubnetPool(Resource):
    """Neutron's subnet pool: prefixes (compacted, in address order) that
    subnets take their CIDRs from (a subnet's ``subnetpool_id``)."""

    KIND: ClassVar[str] = "subnetpool"

    prefixes: tuple[str, ...] = ()
    ip_version: int = 4
    default_prefixlen: int = 8
    min_prefixlen: int = 8
    max_prefixlen: int = 32
    default_quota: int | None = None
    address_scope_id: str | None = None
    shared: bool = False
    is_default: bool = False


@dataclass(frozen=True, slots=True)
class AutoAllocatedTopology(Resource):
    """A project's auto-allocated topology (Neutron's ``auto-allocated-topology``):
    its id is the project's; what was made for it, once."""

    KIND: ClassVar[str] = "auto_allocated_topology"

    network_id: str = ""
    router_id: str = ""


@dataclass(frozen=True, slots=True)
class NetworkSegmentRange(Resource):
    """Segment ids an admin sets aside (Neutron's network-segment-range): new
    tenant networks of ``network_type`` take their id from the ranges of their
    project first, then from the shared ones.  ``default`` is the range of the
    server's configuration (``ApiConfig.vni_range``), read-only."""

    KIND: ClassVar[str] = "network_segment_range"

    network_type: str = "vxlan"
    physical_network: str | None = None
    minimum: int = 0
    maximum: int = 0
    shared: bool = True
    default: bool = False


@dataclass(frozen=True, slots=True)
class DefaultSecurityGroupRule(Resource):
    """A rule of the template every new security group starts with (Neutron's
    security-groups-default-rules): for the projects' default groups
    (``used_in_default_sg``), for the others (``used_in_non_default_sg``), or
    both.  ``remote_group_id`` "PARENT" is the new group itself."""

    KIND: ClassVar[str] = "default_security_group_rule"

    direction: str = "ingress"
    ethertype: str = "IPv4"
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None
    remote_address_group_id: str | None = None
    used_in_default_sg: bool = False
    used_in_non_default_sg: bool = True


@dataclass(frozen=True, slots=True)
class PortForwarding(Resource):
    """A floating IP's port forwarding (Neutron's floating-ip-port-forwarding):
    what arrives at the floating IP's ``external_port`` (or range) over
    ``protocol`` goes to ``internal_ip_address``:``internal_port`` (or the
    range, N-N or 1-N) of ``internal_port_id``, through ``router_id``.  A
    single port is stored as a one-port range (``"80:80"``), as Neutron
    stores it, so a data plane reads only the ranges."""

    KIND: ClassVar[str] = "port_forwarding"

    floatingip_id: str = ""
    floating_ip_address: str = ""
    router_id: str = ""
    protocol: str = "tcp"  # tcp | udp
    internal_port_id: str = ""
    internal_ip_address: str = ""
    internal_port_range: str = ""  # "N:M"
    external_port_range: str = ""  # "N:M"


@dataclass(frozen=True, slots=True)
class MeteringLabel(Resource):
    """Traffic of a project's routers to count (Neutron's metering); a shared
    label counts on every project's routers."""

    KIND: ClassVar[str] = "metering_label"

    shared: bool = False


@dataclass(frozen=True, slots=True)
class MeteringLabelRule(Resource):
    """What one label counts: traffic in ``direction`` to or from
    ``remote_ip_prefix``, or (``excluded``) what not to count of it."""

    KIND: ClassVar[str] = "metering_label_rule"

    metering_label_id: str = ""
    direction: str = "ingress"  # ingress | egress
    remote_ip_prefix: str = ""
    excluded: bool = False


@dataclass(frozen=True, slots=True)
class NetworkLog(Resource):
    """A packet log (Neutron's logging): the security group events
    (``event``) of one group (``resource_id``), one port (``target_id``), or
    every group of the project."""

    KIND: ClassVar[str] = "log"

    resource_type: str = "security_group"
    resource_id: str | None = None
    target_id: str | None = None
    event: str = "ALL"  # ALL | ACCEPT | DROP
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class SubPort:
    port_id: str
    segmentation_type: str = "vlan"
    segmentation_id: int = 0


@dataclass(frozen=True, slots=True)
class Trunk(Resource):
    """A VLAN-aware VM's port (``port_id``, untagged) and its subports, each
    another port carried tagged with its 802.1Q VLAN id."""

    KIND: ClassVar[str] = "trunk"
    NESTED: ClassVar[dict[str, type]] = {"sub_ports": SubPort}

    port_id: str = ""
    admin_state_up: bool = True
    sub_ports: tuple[SubPort, ...] = ()
