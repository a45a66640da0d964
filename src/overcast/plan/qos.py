"""QoS of the local ports: their policies' rules -> shapers, redirects,
ifb devices and DSCP marks (``docs/qos.md``).  Pure.

A port's policy is its own ``qos_policy_id``, else its network's (Neutron:
a network's policy applies to its ports that have none, never to the
network's own ports, ``network:*``).  Neutron's directions are the VM's:
*egress* is what the VM sends (shaped on the port's ifb, to which the tap's
ingress redirects), *ingress* what it receives (shaped on the tap's root).
A ``bandwidth_limit`` rule's ``max_kbps`` is kilobits (1000 bits) per
second of frames on the port; ``max_burst_kbps`` 0 is Neutron's default
burst, 80% of a second at the rate.  ``max_kbps`` 0 limits nothing.

What the kernel of this host cannot do is left out and said
(``PortQos.not_enforced``): each kind of rule needs its features
(``REQUIRES``), named by the agent's probe.  An egress ``minimum_bandwidth``
rule is a guaranteed share of the host's uplink (``--qos-uplink``:
``plan/subsystems/uplink_qos.py``), for ports whose traffic leaves by it
(VXLAN networks, flat networks bridged to it), while the shares fit in its
capacity (admitted in port id order); an ingress one cannot be kept here
(what a VM receives is queued elsewhere): each rule not enforced is said.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from overcast.model.types import (
    BandwidthLimitRule,
    DscpMarkingRule,
    MinimumBandwidthRule,
    Network,
    Port,
    QosPolicy,
)
from overcast.plan import names
from overcast.plan.subsystems.dscp import DscpMarks
from overcast.plan.subsystems.qos import QosIfb, Redirect, Shaper, htb_burst
from overcast.plan.subsystems.uplink_qos import (
    Guarantee,
    Key,
    UplinkRoot,
    class_minor,
    flat_keys,
    uplink_burst,
    vxlan_keys,
)

DEFAULT_BURST = 0.8  # Neutron's burst when max_burst_kbps is 0: this share of a second
ETH_HEADER = 14
# what each kind of limit needs of the kernel (the agent's feature probe names)
REQUIRES: Mapping[str, tuple[str, ...]] = {
    "ingress": ("tc_htb",),
    "egress": ("tc_htb", "tc_ingress", "ifb", "tc_mirred"),
    "dscp": ("nft_bridge",),
    "minimum": ("tc_htb",),  # and u32, which the probe of tc_mirred's redirect filter uses
}
INGRESS_MIN = ("what a VM receives arrives on the uplink from elsewhere: no queue here to "
               "guarantee it")
NO_UPLINK = "no uplink capacity configured (agent option --qos-uplink DEVICE=KBPS)"
QosRule = BandwidthLimitRule | DscpMarkingRule | MinimumBandwidthRule


@dataclass(frozen=True)
class Limit:
    max_kbps: int
    burst_kbits: int  # as applied (Neutron's default filled in)
    device: str

    def as_json(self) -> dict[str, object]:
        return {"max_kbps": self.max_kbps, "max_burst_kbps": self.burst_kbits,
                "device": self.device}


@dataclass(frozen=True)
class Minimum:
    min_kbps: int
    device: str  # the uplink

    def as_json(self) -> dict[str, object]:
        return {"min_kbps": self.min_kbps, "device": self.device}


@dataclass(frozen=True)
class PortQos:
    """What this host enforces of one port's QoS policy."""

    policy_id: str
    egress: Limit | None = None
    ingress: Limit | None = None
    dscp_mark: int | None = None
    not_enforced: tuple[str, ...] = ()
    minimum: Minimum | None = None  # the egress share guaranteed on the uplink

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"policy_id": self.policy_id}
        for direction, limit in (("egress", self.egress), ("ingress", self.ingress)):
            if limit is not None:
                out[direction] = limit.as_json()
        if self.minimum is not None:
            out["minimum"] = self.minimum.as_json()
        if self.dscp_mark is not None:
            out["dscp_mark"] = self.dscp_mark
        if self.not_enforced:
            out["not_enforced"] = list(self.not_enforced)
        return out

    def short_of(self, tap: str, issues: Sequence[tuple[object, str]]) -> PortQos:
        """What is enforced once the records of ``issues`` (record, why: refused
        by the kernel or not in place after a pass) are not: their part left
        out, each said in ``not_enforced``."""
        if not issues:
            return self
        out = self
        for record, _why in issues:
            if isinstance(record, (QosIfb, Redirect)) or (
                    isinstance(record, Shaper) and record.dev != tap):
                out = replace(out, egress=None)
            elif isinstance(record, Shaper):
                out = replace(out, ingress=None)
            elif isinstance(record, DscpMarks):
                out = replace(out, dscp_mark=None)
            elif isinstance(record, (Guarantee, UplinkRoot)):
                out = replace(out, minimum=None)
        return replace(out, not_enforced=out.not_enforced + tuple(why for _, why in issues))


@dataclass(frozen=True)
class QosPlan:
    ifbs: tuple[QosIfb, ...] = ()
    shapers: tuple[Shaper, ...] = ()
    redirects: tuple[Redirect, ...] = ()
    dscp: tuple[DscpMarks, ...] = ()
    ports: Mapping[str, PortQos] = field(default_factory=dict)  # local port id -> enforced
    uplink: tuple[UplinkRoot | Guarantee, ...] = ()

    @property
    def records(self) -> tuple[QosIfb | Shaper | Redirect | DscpMarks | UplinkRoot | Guarantee,
                               ...]:
        return (*self.ifbs, *self.shapers, *self.redirects, *self.dscp, *self.uplink)


def policy_of(port: Port, networks: Mapping[str, Network]) -> str | None:
    """The policy that applies to ``port``: its own, else its network's."""
    if port.qos_policy_id:
        return port.qos_policy_id
    net = networks.get(port.network_id)
    if net is None or port.device_owner.startswith("network:"):
        return None
    return net.qos_policy_id or None


def burst_bytes(max_kbps: int, burst_kbits: int, mtu: int) -> int:
    """The htb burst: what was asked, at least one full frame, at most what htb
    can hold at the rate."""
    return htb_burst(max_kbps * 125, max(burst_kbits * 125, mtu + ETH_HEADER))


@dataclass(frozen=True)
class Uplink:
    """The device tenant traffic leaves this host by, its capacity (kbit/s),
    and the host's physical networks (a flat network's frames leave by its own)."""

    device: str
    kbps: int
    physical_networks: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Wish:
    """A port's egress minimum that this host could guarantee, if it fits."""

    port_id: str
    tap: str
    rule: MinimumBandwidthRule
    keys: tuple[Key, ...]


@dataclass
class _Out:
    features: frozenset[str] | None
    uplink: Uplink | None = None
    networks: Mapping[str, Network] = field(default_factory=dict)
    ifbs: list[QosIfb] = field(default_factory=list)
    shapers: list[Shaper] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)
    marks: dict[str, int] = field(default_factory=dict)
    wishes: list[_Wish] = field(default_factory=list)

    def port(self, port: Port, tap: str, mtu: int, policy: str,
             rules: Sequence[QosRule]) -> PortQos:
        limits: dict[str, Limit] = {}
        dscp: int | None = None
        why: list[str] = []
        for rule in rules:
            if isinstance(rule, BandwidthLimitRule):
                missing = _missing(rule.direction, self.features)
                if rule.max_kbps <= 0:
                    continue
                if missing:
                    why.append(f"bandwidth_limit rule {rule.id} ({rule.direction}): kernel "
                               f"feature {', '.join(missing)} missing")
                    continue
                limits[rule.direction] = self.limit(port, tap, mtu, rule)
            elif isinstance(rule, DscpMarkingRule):
                missing = _missing("dscp", self.features)
                if missing:
                    why.append(f"dscp_marking rule {rule.id}: kernel feature "
                               f"{', '.join(missing)} missing")
                    continue
                dscp = self.marks[tap] = rule.dscp_mark
            elif rule.min_kbps > 0:
                reason = self.minimum(port, tap, rule)
                if reason:
                    why.append(f"{_min_name(rule)}: not enforced, {reason}")
        return PortQos(policy, limits.get("egress"), limits.get("ingress"), dscp, tuple(why))

    def minimum(self, port: Port, tap: str, rule: MinimumBandwidthRule) -> str:
        """Why ``rule`` cannot be guaranteed here ("": it is a wish, if it fits)."""
        if rule.direction != "egress":
            return INGRESS_MIN
        if self.uplink is None:
            return NO_UPLINK
        missing = _missing("minimum", self.features)
        if missing:
            return f"kernel feature {', '.join(missing)} missing"
        net = self.networks.get(port.network_id)
        if net is None or not port.mac_address:
            return "the port has no network or no MAC address"
        if net.network_type == "vxlan" and net.segmentation_id is not None:
            keys = vxlan_keys(port.mac_address, net.segmentation_id)
        elif net.network_type == "flat":
            dev = self.uplink.physical_networks.get(net.physical_network or "")
            if dev != self.uplink.device:
                return (f"its flat network's frames leave by {dev or 'no device'}, not the "
                        f"uplink {self.uplink.device}")
            keys = flat_keys(port.mac_address)
        else:
            return f"a {net.network_type} network's traffic does not leave by the uplink"
        self.wishes.append(_Wish(port.id, tap, rule, keys))
        return ""

    def guarantees(self) -> tuple[tuple[UplinkRoot | Guarantee, ...], dict[str, str]]:
        """The uplink's records, the wishes that fit in its capacity (in port
        id order; a floor of 1% is kept for everything else); port id ->
        why for the others."""
        if self.uplink is None or not self.wishes:
            return (), {}
        dev, capacity = self.uplink.device, self.uplink.kbps
        floor = max(capacity // 100, 1)
        used, taken = 0, set[int]()
        burst = uplink_burst(capacity * 125)
        shares: list[UplinkRoot | Guarantee] = []
        refused: dict[str, str] = {}
        for wish in sorted(self.wishes, key=lambda w: w.port_id):
            if used + wish.rule.min_kbps > capacity - floor:
                refused[wish.port_id] = (
                    f"{_min_name(wish.rule)}: not enforced, the guarantees on {dev} would exceed "
                    f"its capacity of {capacity} kbps ({used} kbps already guaranteed to ports "
                    f"sorted before it, {floor} kbps kept for the rest)")
                continue
            used += wish.rule.min_kbps
            shares.append(Guarantee(dev, class_minor(wish.port_id, taken),
                                    wish.rule.min_kbps * 125, capacity * 125,
                                    htb_burst(wish.rule.min_kbps * 125, burst), wish.keys,
                                    wish.tap))
        if not shares:
            return (), refused
        root = UplinkRoot(dev, capacity * 125, (capacity - used) * 125,
                          htb_burst((capacity - used) * 125, burst))
        return (root, *shares), refused

    def limit(self, port: Port, tap: str, mtu: int, rule: BandwidthLimitRule) -> Limit:
        asked = rule.max_burst_kbps or int(rule.max_kbps * DEFAULT_BURST)
        dev = names.qos_ifb_name(port.id) if rule.direction == "egress" else tap
        burst = burst_bytes(rule.max_kbps, asked, mtu)
        self.shapers.append(Shaper(dev, rule.max_kbps * 125, burst, tap))
        if rule.direction == "egress":
            self.ifbs.append(QosIfb(dev, names.qos_mark(port.id), mtu, True, tap))
            self.redirects.append(Redirect(tap, dev))
        return Limit(rule.max_kbps, -(-burst // 125), dev)  # the burst applied, in kbit


def plan_qos(ports: Sequence[Port], port_devices: Mapping[str, str],
             networks: Mapping[str, Network], policies: Sequence[QosPolicy],
             rules: Sequence[QosRule], features: frozenset[str] | None,
             uplink: Uplink | None = None) -> QosPlan:
    """The QoS records of the local ports (``port_devices``: port id -> tap);
    ``uplink``: where egress minimums are guaranteed."""
    known = {p.id for p in policies}
    by_policy: dict[str, list[QosRule]] = {}
    for rule in sorted(rules, key=lambda r: r.id):
        by_policy.setdefault(rule.policy_id, []).append(rule)
    out = _Out(features, uplink, networks)
    ports_qos: dict[str, PortQos] = {}
    for port in sorted(ports, key=lambda p: p.id):
        tap = port_devices.get(port.id)
        policy = policy_of(port, networks)
        if tap is None or policy is None or policy not in known:
            continue
        net = networks.get(port.network_id)
        ports_qos[port.id] = out.port(port, tap, net.mtu if net is not None else 1500, policy,
                                      by_policy.get(policy, ()))
    dscp_records = (DscpMarks.of(out.marks),) if out.marks else ()
    shares, refused = out.guarantees()
    for share in shares:
        if isinstance(share, Guarantee):
            wish = next(w for w in out.wishes if w.tap == share.port_dev)
            ports_qos[wish.port_id] = replace(ports_qos[wish.port_id],
                                              minimum=Minimum(wish.rule.min_kbps, share.dev))
    for port_id, why in refused.items():
        ports_qos[port_id] = replace(ports_qos[port_id],
                                     not_enforced=(*ports_qos[port_id].not_enforced, why))
    return QosPlan(tuple(out.ifbs), tuple(out.shapers), tuple(out.redirects), dscp_records,
                   ports_qos, shares)


def _min_name(rule: MinimumBandwidthRule) -> str:
    return f"minimum_bandwidth rule {rule.id} ({rule.direction}, {rule.min_kbps} kbps)"


def _missing(what: str, features: frozenset[str] | None) -> list[str]:
    if features is None:
        return []
    return [f for f in REQUIRES[what] if f not in features]
