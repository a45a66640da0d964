"""What this kernel can do, found by trying it in a throwaway namespace
(``oc-probe-<pid>``, removed afterwards) rather than by reading version
numbers.  Each missing feature is reported by name with what it disables.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute
from pyroute2 import netns as _netns

from overcast.linux.nft import Nftables

Probe = Callable[[IPRoute, str], None]


@dataclass(frozen=True, slots=True, order=True)
class Feature:
    name: str
    available: bool
    disables: str  # what does not work without it
    detail: str = ""  # the error seen, when missing


@dataclass(frozen=True, slots=True)
class FeatureReport:
    features: tuple[Feature, ...]

    def available(self, name: str) -> bool:
        return any(f.name == name and f.available for f in self.features)

    def missing(self) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if not f.available)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, for ``Host.features``."""
        return {f.name: {"available": f.available, "disables": f.disables, "detail": f.detail} for f in self.features}

    def render(self) -> str:
        lines = []
        for f in self.features:
            if f.available:
                lines.append(f"{f.name}: yes")
            else:
                lines.append(f"{f.name}: MISSING ({f.detail}) -> disabled: {f.disables}")
        return "\n".join(lines) + "\n"


def _link(**args: Any) -> Probe:
    def probe(ipr: IPRoute, ns: str) -> None:
        if "link" in args:
            args["link"] = ipr.link_lookup(ifname="ocp-veth0")[0]
        ipr.link("add", **args)

    return probe


def _qdisc(kind: str, **args: Any) -> Probe:
    def probe(ipr: IPRoute, ns: str) -> None:
        index = ipr.link_lookup(ifname="ocp-veth0")[0]
        ipr.tc("add", kind, index=index, **args)
        ipr.tc("del", kind, index=index)

    return probe


def _mirred(ipr: IPRoute, ns: str) -> None:
    """A u32 match-all filter on an ingress qdisc redirecting to an ifb device
    (what shapes the traffic a VM sends); the ifb probe made the device."""
    index = ipr.link_lookup(ifname="ocp-veth0")[0]
    ifb = ipr.link_lookup(ifname="ocp-ifb")[0]
    ipr.tc("add", "ingress", index=index, handle=0xFFFF0000)
    try:
        ipr.tc("add-filter", "u32", index=index, parent=0xFFFF0000, prio=1, protocol=0x0003, target=0x10001,
               keys=["0x0/0x0+0"], action={"kind": "mirred", "direction": "egress",
                                            "action": "redirect", "ifindex": ifb})
    finally:
        ipr.tc("del", "ingress", index=index, handle=0xFFFF0000)


def _nft(script: str) -> Probe:
    def probe(ipr: IPRoute, ns: str) -> None:
        with Nftables(netns=ns) as nft:
            nft.cmd(script)

    return probe


def _bridge_nf_call(ipr: IPRoute, ns: str) -> None:
    """br_netfilter's per-bridge switch: set on a new bridge and read back."""
    ipr.link("add", ifname="ocp-brnf", kind="bridge", br_nf_call_iptables=1, br_nf_call_ip6tables=1)
    (msg,) = ipr.get_links(ifname="ocp-brnf")
    data = msg.get("IFLA_LINKINFO").get("IFLA_INFO_DATA")
    got = (data.get("IFLA_BR_NF_CALL_IPTABLES"), data.get("IFLA_BR_NF_CALL_IP6TABLES"))
    if got != (1, 1):
        raise OSError(f"the bridge reports nf_call_iptables/ip6tables {got}, not (1, 1)")


def _path(path: str) -> Probe:
    def probe(ipr: IPRoute, ns: str) -> None:
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} does not exist")

    return probe


_NAT = "add table ip ocp_nat; add chain ip ocp_nat post { type nat hook postrouting priority 100; }; add rule ip ocp_nat post masquerade"
# what the firewall's constant chains use (plan/firewall_chains.py): a mark
# from an ifname map in bridge prerouting with policy drop, concatenated
# interval sets, a verdict map, ct zone set and notrack in inet raw
_FW = ("add table bridge ocp_fw; add map bridge ocp_fw tag { type ifname : mark; }; "
       "add chain bridge ocp_fw pre { type filter hook prerouting priority -300; policy drop; }; "
       "add rule bridge ocp_fw pre iifname \"tap*\" meta mark set 0xffffffff; "
       "add rule bridge ocp_fw pre meta mark set iifname map @tag; add rule bridge ocp_fw pre accept; "
       "add table inet ocp_fw; "
       "add set inet ocp_fw s { type mark . ipv4_addr . inet_proto . inet_service; flags interval; }; "
       "add element inet ocp_fw s { 1 . 10.0.0.0/8 . 6 . 20-30 }; "
       "add chain inet ocp_fw z; add rule inet ocp_fw z ct zone set 1; "
       "add map inet ocp_fw zone { type ifname : verdict; }; "
       "add chain inet ocp_fw raw { type filter hook prerouting priority -300; }; "
       "add rule inet ocp_fw raw meta mark 1 notrack accept; "
       "add rule inet ocp_fw raw iifname vmap @zone; "
       "add chain inet ocp_fw f { type filter hook forward priority 0; }; "
       "add rule inet ocp_fw f meta mark . ip saddr . meta l4proto . th dport @s accept")
_CT = "add table inet ocp_ct; add chain inet ocp_ct c { type filter hook forward priority 0; }; add rule inet ocp_ct c ct state established accept"

# name, what is disabled without it, probe
PROBES: tuple[tuple[str, str, Probe], ...] = (
    ("veth", "namespace workloads of the lab", _link(ifname="ocp-veth0", kind="veth", peer="ocp-veth1")),
    ("bridge", "all tenant networks", _link(ifname="ocp-br", kind="bridge")),
    ("vxlan", "vxlan tenant networks (multi-host L2)", _link(ifname="ocp-vx", kind="vxlan", vxlan_id=1, vxlan_port=4789)),
    ("tuntap", "QEMU tap NICs", _link(ifname="ocp-tap", kind="tuntap", mode="tap")),
    ("macvlan", "macvlan uplinks", _link(ifname="ocp-mv", kind="macvlan", link=True, macvlan_mode="bridge")),
    ("ifb", "QoS egress bandwidth limits (what a VM sends)", _link(ifname="ocp-ifb", kind="ifb")),
    ("vlan", "vlan network_type (802.1Q)", _link(ifname="ocp-vl", kind="vlan", link=True, vlan_id=10)),
    ("geneve", "geneve network_type", _link(ifname="ocp-gn", kind="geneve", geneve_id=1, geneve_remote="198.18.0.1")),
    ("tc_htb", "QoS bandwidth limits", _qdisc("htb", handle="1:", default=0x10)),
    ("tc_ingress", "QoS egress bandwidth limits (what a VM sends)", _qdisc("ingress")),
    ("tc_mirred", "QoS egress bandwidth limits (what a VM sends)", _mirred),
    ("nftables", "port security, security groups, NAT", _nft("add table inet ocp_probe")),
    ("nft_bridge", "filtering of bridged traffic (port security), QoS DSCP marking",
     _nft("add table bridge ocp_probe")),
    ("nft_netdev", "netdev ingress/egress filtering", _nft("add table netdev ocp_probe")),
    ("conntrack", "stateful security groups", _nft(_CT)),
    ("nat", "floating IPs and SNAT", _nft(_NAT)),
    ("br_netfilter", "security groups seen through bridge hooks", _path("/proc/sys/net/bridge")),
    ("br_nf_call", "security groups (bridged traffic never meets the inet hooks; ports stay "
     "DOWN while the firewall is on)", _bridge_nf_call),
    ("nft_firewall", "port security and security groups (the ruleset is refused; ports stay "
     "DOWN while the firewall is on)", _nft(_FW)),
)


def detect_features(probes: tuple[tuple[str, str, Probe], ...] = PROBES) -> FeatureReport:
    """Try every probe in a fresh ``oc-probe-<pid>`` namespace; always removed."""
    ns = f"oc-probe-{os.getpid()}"
    _netns.create(ns)
    try:
        with IPRoute(netns=ns, flags=0) as ipr:
            return FeatureReport(tuple(_run(ipr, ns, *p) for p in probes))
    finally:
        _netns.remove(ns)


def _run(ipr: IPRoute, ns: str, name: str, disables: str, probe: Probe) -> Feature:
    try:
        probe(ipr, ns)
    except Exception as exc:  # any failure means "missing"
        return Feature(name, False, disables, _message(exc))
    return Feature(name, True, disables)


def _message(exc: Exception) -> str:
    args: tuple[object, ...] = tuple(exc.args)
    if len(args) == 2 and isinstance(args[0], int):
        return f"errno {args[0]}: {args[1]}"
    return str(exc) or type(exc).__name__
