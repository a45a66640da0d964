"""HostView: what one host's planner sees of the logical model.

Its own module so that every planner (``plan_host`` in :mod:`overcast.plan.host`,
``compile_firewall`` in :mod:`overcast.plan.firewall`) imports it without
importing another planner: ``plan_host`` can call the firewall compiler
without an import cycle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from overcast.model.types import (
    AddressGroup,
    BandwidthLimitRule,
    DscpMarkingRule,
    FloatingIP,
    MeteringLabel,
    MeteringLabelRule,
    MinimumBandwidthRule,
    Network,
    NetworkLog,
    Port,
    PortForwarding,
    QosPolicy,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
)
from overcast.plan.leases import DEFAULT_DOMAIN


@dataclass(frozen=True)
class HostView:
    """What one host's planner sees of the model.

    ``hosts`` maps every known host name (this one included) to its underlay
    IP.  ``ports`` may contain ports of any host: ``binding_host_id`` says
    where each one lives (the firewall needs every member of a remote group,
    wherever it is bound).  ``security_groups`` and ``security_group_rules``:
    at least those of the local ports (the firewall's input).  ``firewall``:
    whether the host enforces port security and security groups (the
    ruleset is then part of its desired state, even with no local port, so
    that the tables exist before the first port is attached).
    ``address_groups``: at least those the rules name as their remote
    (``remote_address_group_id``).  ``physical_networks``: this host's
    mapping of physical network names to uplink devices (the agent's
    ``--physical-network NAME=DEVICE``), which flat networks are bridged to.
    ``routers`` and ``subnets``: at least the routers with an interface on
    a network of a local port, and the subnets of their interfaces (the
    router of such a network exists on this host, ``docs/routers.md``), and
    the subnets of the local ports (their DHCP leases, ``plan/leases.py``).
    ``physnet_hosts``: for each physical network, the live hosts that map
    it (their agents are alive): a router's SNAT host is chosen among those
    of its external network (:func:`overcast.model.scheduling.snat_host`).
    ``floating_ips``: at least those of the local ports (their DNAT and
    SNAT is on the port's own host) and those with port forwardings.
    ``port_forwardings``: at least those of the routers whose SNAT this
    host does (a floating IP's port forwardings are on its router's SNAT
    host, as Neutron's are on the centralized router).
    """

    host: str
    underlay_ip: str
    hosts: Mapping[str, str]
    networks: Sequence[Network] = ()
    ports: Sequence[Port] = ()
    security_groups: Sequence[SecurityGroup] = ()
    security_group_rules: Sequence[SecurityGroupRule] = ()
    firewall: bool = True
    address_groups: Sequence[AddressGroup] = ()
    physical_networks: Mapping[str, str] = field(default_factory=dict)
    routers: Sequence[Router] = ()
    subnets: Sequence[Subnet] = ()
    # physical network -> the live hosts that map it (sorted): where a router's SNAT can run
    physnet_hosts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    floating_ips: Sequence[FloatingIP] = ()
    # at least those of the routers whose SNAT this host does (made there, on the gateway)
    port_forwardings: Sequence[PortForwarding] = ()
    # metering labels and their rules: counted in the namespaces of the routers they apply
    # to (the label's project's, every project's for a shared one) on their external devices
    metering_labels: Sequence[MeteringLabel] = ()
    metering_rules: Sequence[MeteringLabelRule] = ()
    # security group packet logs (Neutron's logging): what the firewall logs of whose ports
    network_logs: Sequence[NetworkLog] = ()
    live_hosts: frozenset[str] = frozenset()  # hosts whose agent holds its liveness lease
    # the live hosts that can have routers (their registration says ``routers``): where a
    # router whose networks have no port anywhere yet is made, so that its interfaces are
    # realized somewhere (``router_placement``); empty: none is made
    router_hosts: frozenset[str] = frozenset()
    # the domain of the local ports' DHCP host names where their network has no dns_domain
    dns_domain: str = DEFAULT_DOMAIN
    dhcp: bool = True  # this host answers its ports' DHCP (and DNS): the agent's --dhcp
    # QoS policies and their rules (bandwidth limits, DSCP marks, minimum bandwidth):
    # at least those of the local ports' policies and of their networks'
    qos_policies: Sequence[QosPolicy] = ()
    qos_rules: Sequence[BandwidthLimitRule | DscpMarkingRule | MinimumBandwidthRule] = ()
    # the kernel features QoS can use here (the agent's probe); None: all of them
    qos_features: frozenset[str] | None = None
    # the device tenant traffic leaves this host by and its capacity in kbit/s (the
    # agent's --qos-uplink DEVICE=KBPS): where egress minimum bandwidth is guaranteed
    qos_uplink: tuple[str, int] | None = None
