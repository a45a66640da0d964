"""Links: the bridges and VXLAN devices Overcast owns, and which bridge every
device is attached to (its master, MTU and up flag).

Diff rules (the review checklist):

* Objects that are already right are untouched; updates happen in place
  (MTU, alias, up, master, snooping, IPv6) and only VXLAN identity changes
  (VNI, local IP, port, learning) recreate a device.
* Only Overcast-owned bridges/VXLANs (owned name AND mark) are ever deleted;
  attachments are only removed from owned bridges.
* Workload devices (taps) are created by others: an attachment whose device
  does not exist yet is left pending (no change) until it appears.
* Fail closed: while the desired firewall's base chains are not in the
  kernel, no workload device joins a bridge (see :func:`_fenced`).

Observe: owned bridges and VXLAN devices; an attachment for every workload
device and every owned non-bridge device, with its master ("" if none), and
for any other device that is a port of an owned bridge (a flat network's
uplink, the operator's device: attached when the plan wants it, detached
when not, never deleted, its MTU left alone).

Apply: a device that exists with our name and kind but no mark is adopted
(we crashed between creating and marking it); anything else is not ours.
IPv6 goes off before a device or an attachment is brought up.
"""

from __future__ import annotations

from dataclasses import dataclass

from overcast.plan.names import is_owned, is_workload
from overcast.plan.raw import KernelIO, KernelRows, Link, LinkExists
from overcast.plan.state import Change
from overcast.plan.subsystem import DiffContext, Subsystem
from overcast.plan.subsystems.firewall import NftRuleset

VXLAN_PORT = 4789


@dataclass(frozen=True, slots=True, order=True)
class Bridge:
    """A Linux bridge owned by Overcast (one per tenant network per host)."""

    name: str
    mtu: int
    alias: str
    up: bool = True
    # IGMP/MLD snooping: off, so the bridge floods multicast as the VXLAN
    # head-end replication does (and, with it, never sends a query itself)
    mcast_snooping: bool = False
    ipv6: bool = False  # as on Attachment
    # br_netfilter for this bridge only (IFLA_BR_NF_CALL_IPTABLES/IP6TABLES):
    # bridged IPv4/IPv6 meet the inet hooks, where the security groups are
    nf_call_iptables: bool = False
    nf_call_ip6tables: bool = False

    def render(self) -> str:
        snooping = " mcast_snooping" if self.mcast_snooping else ""
        nf = "".join(f" {k}" for k, on in (("nf_call_iptables", self.nf_call_iptables),
                                           ("nf_call_ip6tables", self.nf_call_ip6tables)) if on)
        return (f"bridge {self.name} mtu {self.mtu}{snooping}{nf}{_ipv6(self.ipv6)}"
                f" alias {self.alias}{_down(self.up)}")

    def devices(self) -> frozenset[str]:
        return frozenset((self.name,))


@dataclass(frozen=True, slots=True, order=True)
class Vxlan:
    """A VXLAN device: one VNI, static FDB only (``learning`` off)."""

    name: str
    vni: int
    local_ip: str
    mtu: int
    alias: str
    port: int = VXLAN_PORT
    learning: bool = False
    up: bool = True

    def identity(self) -> tuple[int, str, int, bool]:
        """The attributes that cannot be changed in place (recreate instead)."""
        return (self.vni, self.local_ip, self.port, self.learning)

    def render(self) -> str:
        learning = " learning" if self.learning else " nolearning"
        return (f"vxlan {self.name} id {self.vni} local {self.local_ip} dstport {self.port}"
                f" mtu {self.mtu}{learning} alias {self.alias}{_down(self.up)}")

    def devices(self) -> frozenset[str]:
        return frozenset((self.name,))


@dataclass(frozen=True, slots=True, order=True)
class Attachment:
    """Device ``ifname`` is a port of bridge ``master`` and is up.

    ``master == ""`` (observed only) means the device exists but is attached
    to nothing.  ``mtu is None`` (desired) means "leave the MTU alone".
    """

    ifname: str
    master: str
    mtu: int | None = None
    up: bool = True
    ipv6: bool = False  # IPv6 on the device (off: no MLD, RS or DAD into the tenant network)
    # interface group: names.PORT_GROUP for a workload device on an owned
    # bridge (the firewall drops its frames while it has no tag); 0 otherwise
    group: int = 0

    def render(self) -> str:
        mtu = "" if self.mtu is None else f" mtu {self.mtu}"
        group = f" group {self.group:#x}" if self.group else ""
        return (f"attach {self.ifname} master {self.master or '-'}{mtu}{_ipv6(self.ipv6)}"
                f"{group}{_down(self.up)}")

    def devices(self) -> frozenset[str]:
        return frozenset((self.ifname, self.master))


def _ipv6(on: bool) -> str:
    return " ipv6" if on else ""


def _down(up: bool) -> str:
    return "" if up else " down"


# --- diff ---------------------------------------------------------------------
def diff(d: DiffContext) -> None:
    _diff_bridges(d)
    _diff_vxlans(d)
    _diff_attachments(d)


def _diff_bridges(d: DiffContext) -> None:
    observed = {b.name: b for b in d.observed[Bridge]}
    wanted = {b.name for b in d.desired[Bridge]}
    for bridge in d.desired[Bridge]:
        old = observed.get(bridge.name)
        if old != bridge:
            d.put(bridge, old)
    _delete_unwanted(d, observed, wanted)


def _diff_vxlans(d: DiffContext) -> None:
    observed = {v.name: v for v in d.observed[Vxlan]}
    wanted = {v.name for v in d.desired[Vxlan]}
    for vxlan in d.desired[Vxlan]:
        old = observed.get(vxlan.name)
        if old is not None and old.identity() != vxlan.identity() and is_owned(old.name, old.alias):
            d.delete(old)
            d.gone.add(old.name)
            old = None
        if old != vxlan:
            d.put(vxlan, old)
    _delete_unwanted(d, observed, wanted)


def _delete_unwanted(d: DiffContext, observed: dict[str, Bridge] | dict[str, Vxlan],
                     wanted: set[str]) -> None:
    """Owned devices of this kind that nothing wants go, with what hangs on them."""
    for old in observed.values():
        if old.name not in wanted and is_owned(old.name, old.alias):
            d.delete(old)
            d.gone.add(old.name)


def _diff_attachments(d: DiffContext) -> None:
    observed = {a.ifname: a for a in d.observed[Attachment]}
    created = {v.name for v in d.desired[Vxlan]} | {b.name for b in d.desired[Bridge]}
    wanted = {a.ifname for a in d.desired[Attachment]}
    fenced = _fenced(d)
    for att in d.desired[Attachment]:
        old = None if att.ifname in d.gone else observed.get(att.ifname)
        if old is None and att.ifname not in created and is_workload(att.ifname):
            continue  # workload device not there (yet): pending
        # (an uplink, the operator's device, is attached whenever it is not seen on its
        # bridge: observe sees it only there; a missing one is the apply's error)
        if fenced and is_workload(att.ifname) and (old is None or old.master != att.master):
            continue  # joins its bridge once the firewall's chains are in the kernel
        if old is None or not _attachment_ok(att, old):
            d.put(att, old)
    owned_bridges = {b.name for b in d.observed[Bridge] if is_owned(b.name, b.alias)}
    for old in observed.values():
        if old.ifname in wanted or old.master not in owned_bridges:
            continue
        # a bridge that goes frees its ports, but a port of Overcast's group
        # leaves it by a delete of its own (which also takes the group back)
        if old.ifname not in d.gone and (old.master not in d.gone or old.group):
            d.delete(old)


def _fenced(d: DiffContext) -> bool:
    """True while the desired firewall's base chains are not in the kernel
    as desired (a fresh host, a table deleted by hand, a kernel that refuses
    or cannot list the ruleset): no workload device joins a bridge then, so
    a port never forwards a frame before the chains that drop frames of
    ports without rules exist.  The firewall goes after links, so the
    chains are made in this pass and the ports attached in the next."""
    want = d.desired[NftRuleset]
    if not want:
        return False
    have = d.observed[NftRuleset]
    hooked = {c for c in want[0].chains if c.hook}
    return not have or not hooked <= have[0].chains


def _attachment_ok(want: Attachment, have: Attachment) -> bool:
    mtu_ok = want.mtu is None or want.mtu == have.mtu
    return (mtu_ok and want.master == have.master and want.up == have.up
            and want.ipv6 == have.ipv6 and want.group == have.group)


# --- observe --------------------------------------------------------------------
def observe(rows: KernelRows) -> list[Bridge | Vxlan | Attachment]:
    links = rows.link_rows()
    by_index = {ln.index: ln.name for ln in links}
    owned = [ln for ln in links if is_owned(ln.name, ln.alias)]
    out: list[Bridge | Vxlan | Attachment] = [
        Bridge(ln.name, ln.mtu, ln.alias, ln.up, ln.mcast_snooping, ln.ipv6,
               ln.nf_call_iptables, ln.nf_call_ip6tables)
        for ln in owned if ln.kind == "bridge"]
    out += [vxlan_of(ln) for ln in owned if ln.kind == "vxlan"]
    bridges = {ln.index for ln in owned if ln.kind == "bridge"}
    out += [Attachment(ln.name, by_index.get(ln.master, ""), ln.mtu, ln.up, ln.ipv6, ln.group)
            for ln in links if ln.kind != "bridge" and (
                is_workload(ln.name) or is_owned(ln.name, ln.alias) or ln.master in bridges)]
    return out


def vxlan_of(link: Link) -> Vxlan:
    if not link.vxlan_data:
        raise ValueError(f"{link.name}: no vxlan data")
    return Vxlan(link.name, link.vni, link.local_ip, link.mtu, link.alias, link.port,
                 link.learning, link.up)


# --- apply ------------------------------------------------------------------------
def apply(io: KernelIO, change: Change) -> None:
    obj = change.obj
    if isinstance(obj, Attachment):
        if change.op == "delete":  # and no longer in Overcast's port group
            io.port_set(obj.ifname, master="", group=0 if obj.group else None)
            return
        if not obj.ipv6:
            io.ipv6_off(obj.ifname)  # before the request that sets it up
        io.port_set(obj.ifname, master=obj.master, mtu=obj.mtu, up=obj.up, group=obj.group)
    elif change.op == "delete":
        io.link_del(obj.name)
    elif change.op == "create":
        _create(io, obj)
    else:
        _set(io, obj)


def _create(io: KernelIO, obj: Bridge | Vxlan) -> None:
    try:
        io.link_add(obj.name, *_add_args(obj))
    except LinkExists:
        if not _adoptable(io.link_get(obj.name), obj):
            raise
    io.ipv6_off(obj.name)
    _set(io, obj)


def _add_args(obj: Bridge | Vxlan) -> tuple[str, int, dict[str, int | str]]:
    if isinstance(obj, Bridge):
        # snooping as the record says and never a querier: no queries sent
        return "bridge", obj.mtu, {"mcast_snooping": int(obj.mcast_snooping), "mcast_querier": 0,
                                   "nf_call_iptables": int(obj.nf_call_iptables),
                                   "nf_call_ip6tables": int(obj.nf_call_ip6tables)}
    return "vxlan", obj.mtu, {"vni": obj.vni, "local": obj.local_ip, "port": obj.port,
                              "learning": int(obj.learning)}


def _adoptable(link: Link | None, obj: Bridge | Vxlan) -> bool:
    """A device with our name and kind but no mark: we crashed between
    creating it and marking it.  Anything else is not ours."""
    kind = "bridge" if isinstance(obj, Bridge) else "vxlan"
    if link is None or link.kind != kind or link.alias:
        return False
    return not isinstance(obj, Vxlan) or vxlan_of(link).identity() == obj.identity()


def _set(io: KernelIO, obj: Bridge | Vxlan) -> None:
    if isinstance(obj, Bridge):  # repairs snooping or br_netfilter changed by hand, or by an adopter
        if not obj.ipv6:
            io.ipv6_off(obj.name)
        io.link_set(obj.name, obj.mtu, obj.alias, obj.up, mcast_snooping=obj.mcast_snooping,
                    nf_call=(obj.nf_call_iptables, obj.nf_call_ip6tables))
    else:
        io.link_set(obj.name, obj.mtu, obj.alias, obj.up)


SUBSYSTEM = Subsystem("links", (Bridge, Vxlan, Attachment), diff, observe, apply)
