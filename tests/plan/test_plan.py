"""plan_host: golden scenarios and the rules behind them."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from overcast.model.types import AddressPair, Port
from overcast.plan import plan_host
from overcast.plan.names import PORT_GROUP, bridge_name, tap_name, vxlan_name
from overcast.plan.state import KernelState
from overcast.plan.subsystems.fdb import BUM_MAC, FdbEntry
from overcast.plan.subsystems.firewall import NftRuleset
from overcast.plan.subsystems.links import Attachment, Bridge, Vxlan

from .scenarios import HOSTS, NET_A, NET_B, NET_F, NET_L, net, port, two_nets_three_hosts, view

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("host", sorted(HOSTS))
def test_golden_two_networks_three_hosts(host: str) -> None:
    networks, ports = two_nets_three_hosts()
    text = plan_host(view(host, networks, ports)).render()
    path = GOLDEN / f"two_nets_three_hosts-{host}.txt"
    if os.environ.get("OVERCAST_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_host_without_ports_gets_nothing() -> None:
    networks, ports = two_nets_three_hosts()
    plan = plan_host(view("h4", networks, ports, {**HOSTS, "h4": "198.18.0.4"}))
    assert only_the_empty_ruleset(plan.state)
    assert plan.port_devices == {}
    assert plan.problems == ()


def test_replication_only_towards_hosts_with_ports_on_the_network() -> None:
    networks, ports = two_nets_three_hosts()
    fdb = plan_host(view("h1", networks, ports)).state[FdbEntry]
    bum = {e.dst for e in fdb if e.mac == BUM_MAC}
    assert bum == {HOSTS["h2"]}  # h3 has no port on A; A's unbound port goes nowhere


def test_remote_macs_including_allowed_pairs_point_at_their_host() -> None:
    networks, ports = two_nets_three_hosts()
    fdb = set(plan_host(view("h1", networks, ports)).state[FdbEntry])
    vx = vxlan_name(NET_A)
    assert FdbEntry(vx, "fa:16:3e:00:00:03", HOSTS["h2"]) in fdb
    assert FdbEntry(vx, "fa:16:3e:aa:bb:cc", HOSTS["h2"]) in fdb  # lower-cased
    assert not any(e.mac in ("fa:16:3e:00:00:01", "fa:16:3e:00:00:02") for e in fdb)  # local MACs


def test_local_network_is_a_bridge_without_vxlan() -> None:
    networks, ports = two_nets_three_hosts()
    plan = plan_host(view("h1", networks, ports))
    assert bridge_name(NET_L) in {b.name for b in plan.state[Bridge]}
    assert vxlan_name(NET_L) not in {v.name for v in plan.state[Vxlan]}
    assert Attachment(tap_name(ports[6].id), bridge_name(NET_L), 1450, group=PORT_GROUP) \
        in plan.state[Attachment]


def test_admin_down_port_is_attached_but_down() -> None:
    networks, ports = two_nets_three_hosts()
    plan = plan_host(view("h1", networks, ports))
    assert Attachment(tap_name(ports[1].id), bridge_name(NET_A), 1450, up=False,
                      group=PORT_GROUP) in plan.state[Attachment]


def test_a_flat_network_whose_physical_network_is_not_mapped_is_reported_not_planned() -> None:
    networks, ports = two_nets_three_hosts()
    plan = plan_host(view("h3", networks, ports))
    assert [p.path for p in plan.problems] == [f"network/{NET_F}"]
    assert plan.problems[0].message == ("physical network 'external' is not mapped on host h3 "
                                        "(agent option --physical-network external=DEVICE)")
    assert ports[7].id not in plan.port_devices
    assert bridge_name(NET_F) not in {b.name for b in plan.state[Bridge]}


def test_a_flat_network_is_its_bridge_with_the_mapped_uplink_and_nothing_on_the_overlay() -> None:
    networks, ports = two_nets_three_hosts()
    plan = plan_host(replace(view("h3", networks, ports), physical_networks={"external": "eth9"}))
    assert plan.problems == ()
    bridge = bridge_name(NET_F)
    assert {(a.ifname, a.mtu) for a in plan.state[Attachment] if a.master == bridge} == {
        ("eth9", None), (tap_name(ports[7].id), 1500)}  # the uplink's MTU is left alone
    assert plan.port_needs[ports[7].id] == {bridge, "eth9", tap_name(ports[7].id)}
    assert vxlan_name(NET_F) not in {v.name for v in plan.state[Vxlan]}
    assert not [f for f in plan.state[FdbEntry] if f.dev == vxlan_name(NET_F)]


def test_two_flat_networks_cannot_share_an_uplink() -> None:
    networks, ports = two_nets_three_hosts()
    other = replace(networks[3], id="ffffffff-5555-4555-8555-000000000009", physical_network="also")
    plan = plan_host(replace(view("h3", [*networks, other], [*ports, port(10, other.id, "h3")]),
                             physical_networks={"external": "eth9", "also": "eth9"}))
    assert [(p.path, p.message) for p in plan.problems] == [
        (f"network/{other.id}", f"eth9 is already used by network/{NET_F}")]


@pytest.mark.parametrize(
    ("network", "words"),
    [
        (net(NET_A, None), "segmentation_id None"),
        (net(NET_A, 2**24), "segmentation_id 16777216"),
        (net(NET_A, 5, mtu=20), "mtu 20"),
        (net(NET_A, 5, type_="geneve"), "geneve is not supported"),
    ],
)
def test_invalid_networks_are_problems(network: object, words: str) -> None:
    plan = plan_host(view("h1", [network], [port(1, NET_A, "h1")]))  # type: ignore[list-item]
    assert only_the_empty_ruleset(plan.state)
    assert len(plan.problems) == 1 and words in plan.problems[0].message


def test_unknown_network_and_unknown_host_are_problems() -> None:
    ports = [port(1, NET_A, "h1"), port(2, NET_B, "h1"), port(3, NET_A, "h9")]
    plan = plan_host(view("h1", [net(NET_A, 7)], ports))
    messages = {p.path: p.message for p in plan.problems}
    assert f"network {NET_B} is unknown" == messages[f"port/{ports[1].id}"]
    assert "h9" in messages[f"port/{ports[2].id}"]
    assert {e.dst for e in plan.state[FdbEntry]} == set()  # nothing towards an unknown host


def test_no_vxlan_without_underlay_ip() -> None:
    plan = plan_host(view("h1", [net(NET_A, 7)], [port(1, NET_A, "h1")], {"h1": ""}))
    assert plan.state[Vxlan] == ()
    assert "underlay" in plan.problems[0].message


def test_tap_name_collision_is_reported() -> None:
    a = Port(id="abcdefghijk-1", network_id=NET_A, mac_address="fa:16:3e:00:00:01", binding_host_id="h1")
    b = a.replace(id="abcdefghijk-2", mac_address="fa:16:3e:00:00:02")
    plan = plan_host(view("h1", [net(NET_A, 7)], [b, a]))
    assert plan.port_devices == {a.id: "tapabcdefghijk"}
    assert [p.path for p in plan.problems] == [f"port/{b.id}"]


def test_port_devices_cover_local_ports_on_planned_networks() -> None:
    networks, ports = two_nets_three_hosts()
    plan = plan_host(view("h2", networks, ports))
    assert plan.port_devices == {ports[2].id: tap_name(ports[2].id), ports[3].id: tap_name(ports[3].id)}
    assert {b.alias for b in plan.state[Bridge]} == {f"overcast:net:{NET_A}", f"overcast:net:{NET_B}"}


def only_the_empty_ruleset(state: KernelState) -> bool:
    """A host without realized ports: no links, no FDB; the firewall's
    tables, sets and chains without elements (they exist before the first
    port is attached, so that it can never forward without its rules)."""
    (ruleset,) = state[NftRuleset]
    return state.records == {ruleset} and not ruleset.elements and bool(ruleset.chains)


def test_firewall_off_plans_no_ruleset_and_no_br_netfilter() -> None:
    networks, ports = two_nets_three_hosts()
    on = plan_host(view("h1", networks, ports))
    off = plan_host(replace(view("h1", networks, ports), firewall=False))
    assert off.state[NftRuleset] == () and len(on.state[NftRuleset]) == 1
    assert all(b.nf_call_iptables and b.nf_call_ip6tables for b in on.state[Bridge])
    assert not any(b.nf_call_iptables or b.nf_call_ip6tables for b in off.state[Bridge])
    assert off.port_devices == on.port_devices


def test_every_local_port_is_pinned_on_the_ruleset() -> None:
    """A refused or missing ruleset makes every local port DOWN: its
    devices() name every local port's tap, which is in the port's needs."""
    networks, ports = two_nets_three_hosts()
    plan = plan_host(view("h1", networks, ports))
    (ruleset,) = plan.state[NftRuleset]
    for pid, tap in plan.port_devices.items():
        assert tap in ruleset.devices() and tap in plan.port_needs[pid]


def test_a_multicast_mac_is_never_a_static_fdb_entry() -> None:
    """The API accepts a multicast port MAC (as Neutron): as a static entry it
    would pull that group's frames to one host; flooding carries them."""
    remote = replace(port(2, NET_A, "h2"), mac_address="33:33:ff:00:00:05",
                     allowed_address_pairs=(AddressPair("10.0.0.50", "01:00:5e:00:00:fb"),))
    plan = plan_host(view("h1", [net(NET_A, 1001)], [port(1, NET_A, "h1"), remote]))
    macs = {e.mac for e in plan.state[FdbEntry]}
    assert macs == {"00:00:00:00:00:00"}
