"""Packets through the firewall, in real namespaces, as a user would see
them: who can connect to whom, what a VM can forge, and what a capture on
the victim proves never arrived.

Each test builds its own host: a namespace ``oc-fw-<run>-<test>h`` (named
and removed as in ``test_firewall_kernel.py``) whose bridges, port
attachments and ruleset the registered subsystems make from ``plan_host``
through ``NetlinkKernel``, as the agent does; and one namespace per VM, ``oc-fw-<run>-<test>v<n>``,
whose ``eth0`` is the other end of the port's tap, with the port's MAC and
fixed IP.  ``net.bridge.bridge-nf-call-iptables``/``ip6tables`` are per
network namespace on this kernel (a fresh namespace starts with 1); the
host namespace sets them to 0, so that only the per-bridge options the
links subsystem sets send bridged traffic through the inet hooks, and,
should a kernel share them with the initial namespace, the previous values
are restored.

Absence is proved without sleeping: the forbidden packet is seen leaving
the sender, then the sender sends a packet that is allowed (a marker),
all from one CPU so the host processes them in order; when the marker has
arrived at the victim, the forbidden packet would have too.

``OVERCAST_FW_PACKETS_WITHOUT_RULESET=1`` runs the same traffic with the
bridges but no ruleset: every test here must then fail (the control that
they test the firewall).
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv6Address
from itertools import count
from pathlib import Path

import pytest
from pyroute2 import netns

from overcast.agent.reconciler import reconcile
from overcast.agent.status import port_statuses
from overcast.linux.netlink import NetlinkKernel
from overcast.model.types import AddressPair, Port, SecurityGroup, SecurityGroupRule
from overcast.plan import HostView, plan_host
from overcast.plan.diff import diff
from overcast.plan.firewall import compile_firewall
from overcast.plan.firewall_admits import Flow
from overcast.plan.firewall_chains import revoked_set, staged_set
from overcast.plan.names import FW_TABLE, PORT_GROUP, bridge_name, tap_name
from overcast.plan.subsystems import firewall_apply
from overcast.plan.subsystems.firewall_apply import STAGE_FROM
from overcast.plan.subsystems.firewall_records import NftElement, NftRuleset
from plan.scenarios import HOSTS, NET_A, NET_B, net
from plan.test_firewall_golden import DB, DEFAULT, LOOSE, WEB, default_rules, group, rule, vm

from .conftest import RUN, add_workload, ip_json
from .test_firewall_wire import (
    BROADCAST,
    DEADLINE,
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    Capture,
    Frame,
    Wire,
    arp,
    eth,
    icmp6_router_advertisement,
    in_netns,
    ipv4_udp,
    one_cpu,
)

pytestmark = pytest.mark.root
PREFIX = "oc-fw" + RUN.removeprefix("oc-t")
WITHOUT_RULESET = os.environ.get("OVERCAST_FW_PACKETS_WITHOUT_RULESET") == "1"
SYSCTLS = ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables")
LOCAL = [net(NET_A, type_="local"), net(NET_B, type_="local")]
ZERO_MAC = "00:00:00:00:00:00"
_tests = count(1)


@dataclass(frozen=True)
class Vm:
    ns: str
    port: Port

    @property
    def mac(self) -> str:
        return self.port.mac_address

    @property
    def ip(self) -> str:
        return self.port.fixed_ips[0].ip_address


@dataclass
class Host:
    """One hypervisor's namespace, its kernel driver, and its VMs by number."""

    ns: str
    kernel: NetlinkKernel
    view: HostView
    vms: dict[int, Vm] = field(default_factory=dict)

    def converge(self, view: HostView) -> tuple[Flow, ...]:
        """Links and ruleset of ``view``, as the agent applies them (its
        passes: observe, diff, apply, the conntrack sweep): plan_host
        puts the ruleset in the desired state (and br_netfilter on every
        bridge); on a fresh host the first pass makes the firewall's chains
        and the second attaches the taps.  Returns the conntrack entries
        the passes deleted."""
        plan = plan_host(replace(view, firewall=not WITHOUT_RULESET))
        state = plan.state
        assert plan.problems == (), plan.problems
        swept: tuple[Flow, ...] = ()
        for _ in range(2):
            done = reconcile(self.kernel, state)
            assert done.errors == (), [e.render() for e in done.errors]
            swept += done.swept
        assert diff(state, self.kernel.observe()) == []
        self.view = view
        return swept


MakeHost = Callable[[Sequence[Port], Sequence[SecurityGroup], Sequence[SecurityGroupRule]], Host]


@pytest.fixture
def host() -> Iterator[MakeHost]:
    made: list[str] = []
    kernels: list[NetlinkKernel] = []
    restore: dict[str, str] = {}
    test = next(_tests)

    def make_ns(role: str) -> str:
        made.append(f"{PREFIX}-{test}{role}")
        netns.create(made[-1])
        return made[-1]

    def make(ports: Sequence[Port], groups: Sequence[SecurityGroup],
             rules: Sequence[SecurityGroupRule]) -> Host:
        ns = make_ns("h")
        restore.update(_bridge_nf_on(ns))
        vms = {}
        for p in ports:
            n = int(p.id[:8], 16)
            vms[n] = Vm(make_ns(f"v{n}"), p)
            ip = p.fixed_ips[0].ip_address
            add_workload(ns, vms[n].ns, tap_name(p.id), p.mac_address, f"{ip}/24")
        kernels.append(NetlinkKernel(ns))
        view = HostView("h1", HOSTS["h1"], dict(HOSTS), LOCAL, list(ports), list(groups), list(rules))
        h = Host(ns, kernels[-1], view, vms)
        h.converge(view)
        return h

    try:
        with one_cpu():
            yield make
    finally:
        for kernel in kernels:
            kernel.close()
        for name in reversed(made):
            try:
                netns.remove(name)
            except OSError:
                pass
        for key, value in restore.items():
            Path("/proc/sys/net/bridge", key).write_text(value)


def _bridge_nf_on(ns: str) -> dict[str, str]:
    """The host-wide br_netfilter switches OFF in ``ns``: bridged IPv4/IPv6
    reach the inet hooks only through the per-bridge options that the links
    subsystem sets on Overcast's bridges.  What to restore here if the
    setting turned out to be shared with this namespace."""
    here = {k: Path("/proc/sys/net/bridge", k).read_text() for k in SYSCTLS}
    for key in SYSCTLS:
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.bridge.{key}=0"], check=True)
    return {k: v for k, v in here.items() if Path("/proc/sys/net/bridge", k).read_text() != v}


# --- what a user does -------------------------------------------------------------------

def listen(v: Vm, port: int, kind: int = socket.SOCK_STREAM, addr: str = "") -> socket.socket:
    s = in_netns(v.ns, socket.AF_INET, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr or v.ip, port))
    if kind == socket.SOCK_STREAM:
        s.listen(8)
    s.setblocking(False)
    return s


def ready(s: socket.socket, deadline: float = DEADLINE) -> bool:
    return bool(select.select([s], [], [], deadline)[0])


def talk(client: Vm, server: Vm, port: int, dst: str = "", sport: int = 0,
         srv: socket.socket | None = None) -> tuple[socket.socket, socket.socket]:
    """A TCP connection from ``client`` to ``server``: it opens, and a request
    and an answer cross it.  Returns both ends, still open."""
    srv = srv or listen(server, port, addr=dst)
    c = in_netns(client.ns)
    if sport:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        c.bind((client.ip, sport))
    c.settimeout(DEADLINE)
    c.connect((dst or server.ip, port))
    assert ready(srv), f"{server.ns}: connection from {client.ip} not accepted"
    conn, _ = srv.accept()
    exchange(c, conn, b"request from " + client.ip.encode())
    exchange(conn, c, b"answer from " + server.ip.encode())
    return c, conn


def closed(ends: tuple[socket.socket, socket.socket]) -> None:
    for end in ends:
        end.close()


def exchange(a: socket.socket, b: socket.socket, data: bytes) -> None:
    a.sendall(data)
    b.settimeout(DEADLINE)
    got = b""
    while len(got) < len(data):
        chunk = b.recv(len(data) - len(got))
        assert chunk, "connection closed"
        got += chunk
    assert got == data


def ping(src: Vm, dst: str) -> None:
    """Echo requests until one is answered (or the deadline passes)."""
    end = time.monotonic() + DEADLINE
    while subprocess.run(["ip", "netns", "exec", src.ns, "ping", "-n", "-q", "-c1", "-W1", dst],
                         capture_output=True).returncode != 0:
        assert time.monotonic() < end, f"{src.ns}: no answer from {dst}"


def arp_marker(src: Vm, dst: Vm) -> bytes:
    """An honest ARP request from ``src`` for ``dst``: allowed from every VM."""
    return eth(BROADCAST, src.mac, ETH_P_ARP, arp(1, src.mac, src.ip, ZERO_MAC, dst.ip))


def is_arp_marker(src: Vm, dst: Vm) -> Callable[[Frame], bool]:
    return lambda f: f.arp() == (1, src.mac, src.ip, dst.ip)


# --- (a) the default group ---------------------------------------------------------------

def test_default_group_members_talk_a_stranger_cannot_open_in_replies_come_back(host: MakeHost) -> None:
    stranger_rules = [rule(20, WEB, protocol="tcp", port_range_min=1, port_range_max=65535),
                      rule(21, WEB, protocol="icmp"), rule(22, WEB, "egress")]
    h = host([vm(1, "h1", "10.0.0.1"), vm(2, "h1", "10.0.0.2"), vm(3, "h1", "10.0.0.3", (WEB,))],
             [group(DEFAULT), group(WEB)], [*default_rules(DEFAULT), *stranger_rules])
    one, two, stranger = h.vms[1], h.vms[2], h.vms[3]
    ping(one, two.ip)
    ping(two, one.ip)
    closed(talk(one, two, 8080))
    closed(talk(two, one, 8080))
    # the member opens a connection to the stranger (who admits it): the
    # answers come back although the member admits nothing from the stranger
    closed(talk(one, stranger, 8081))
    ping(one, stranger.ip)
    # the stranger cannot open anything to the member
    srv = listen(one, 8082)
    cap = Capture(one.ns)
    blocked_syn(stranger, one, 8082, cap)
    blocked_echo(stranger, one, cap)
    assert not ready(srv, 0), "the stranger's connection was accepted"


def blocked_syn(client: Vm, server: Vm, port: int, cap: Capture) -> None:
    """``client`` tries to connect to ``server``:``port``; its SYN leaves and
    never arrives."""
    out = Capture(client.ns)
    c = in_netns(client.ns)
    c.setblocking(False)
    c.connect_ex((server.ip, port))
    try:
        out.wait(lambda f: f.tcp_syn() == (client.ip, server.ip, port), outgoing=True)
        _then_marker(client, server, cap)
        assert cap.received(lambda f: f.tcp_syn() == (client.ip, server.ip, port)) == []
    finally:
        c.close()
        out.close()


def blocked_echo(src: Vm, dst: Vm, cap: Capture) -> None:
    out = Capture(src.ns)
    s = in_netns(src.ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    try:
        s.sendto(b"\x08\x00\xf7\xfe\x00\x01\x00\x00", (dst.ip, 0))  # echo request id 1 seq 0

        def echo(f: Frame) -> bool:
            ip = f.ipv4()
            return ip is not None and ip[:3] == (src.ip, dst.ip, 1) and ip[3][:1] == b"\x08"

        out.wait(echo, outgoing=True)
        _then_marker(src, dst, cap)
        assert cap.received(echo) == []
    finally:
        s.close()
        out.close()


def _then_marker(src: Vm, dst: Vm, cap: Capture) -> None:
    w = Wire(src.ns)
    try:
        w.send(arp_marker(src, dst))
    finally:
        w.close()
    cap.wait(is_arp_marker(src, dst))


# --- (b) tcp/22 from a CIDR --------------------------------------------------------------

def test_tcp_22_from_a_cidr_opens_exactly_that(host: MakeHost) -> None:
    ssh = [rule(30, WEB, protocol="tcp", port_range_min=22, port_range_max=22,
                remote_ip_prefix="10.0.0.0/30"), rule(31, WEB, "egress")]
    h = host([vm(1, "h1", "10.0.0.1", (WEB,)), vm(2, "h1", "10.0.0.2", (WEB,)),
              vm(5, "h1", "10.0.0.5", (WEB,))], [group(WEB)], ssh)
    server, inside, outside = h.vms[1], h.vms[2], h.vms[5]
    closed(talk(inside, server, 22))
    listeners = [listen(server, 22), listen(server, 23)]
    cap = Capture(server.ns)
    blocked_syn(inside, server, 23, cap)
    blocked_syn(outside, server, 22, cap)
    assert not any(ready(s, 0) for s in listeners)
    closed(talk(inside, server, 22, srv=listeners[0]))


# --- (c) spoofing ------------------------------------------------------------------------

def test_forged_frames_reach_nobody_and_the_vms_own_traffic_still_works(host: MakeHost) -> None:
    h = host([vm(1, "h1", "10.0.0.1"), vm(2, "h1", "10.0.0.2"), vm(3, "h1", "10.0.0.3")],
             [group(DEFAULT)], default_rules(DEFAULT))
    bad, victim, third = h.vms[1], h.vms[2], h.vms[3]
    ping(victim, third.ip)  # the victim knows the third VM's MAC: poisoning would show
    udp = listen(victim, 6000, socket.SOCK_DGRAM, addr="0.0.0.0")
    cap = Capture(victim.ns)
    to_victim = ipv4_udp(bad.ip, victim.ip, 5000, 6000, b"forged source MAC")
    ll = str(IPv6Address("fe80::f816:3eff:fe00:1"))
    forged = {
        "another source MAC": eth(victim.mac, "fa:16:3e:00:00:99", ETH_P_IP, to_victim),
        "the third VM's MAC": eth(victim.mac, third.mac, ETH_P_IP, to_victim),
        "another source IP": eth(victim.mac, bad.mac, ETH_P_IP,
                                 ipv4_udp("10.0.0.77", victim.ip, 5000, 6000, b"forged source IP")),
        "ARP reply claiming the third VM's IP": eth(
            victim.mac, bad.mac, ETH_P_ARP, arp(2, bad.mac, third.ip, victim.mac, victim.ip)),
        "ARP with a forged sender MAC": eth(
            BROADCAST, bad.mac, ETH_P_ARP, arp(1, "fa:16:3e:00:00:99", bad.ip, ZERO_MAC, victim.ip)),
        "gratuitous ARP for the third VM's IP": eth(
            BROADCAST, bad.mac, ETH_P_ARP, arp(1, bad.mac, third.ip, ZERO_MAC, third.ip)),
        "gratuitous ARP for the gateway": eth(
            BROADCAST, bad.mac, ETH_P_ARP, arp(1, bad.mac, "10.0.0.254", ZERO_MAC, "10.0.0.254")),
        "DHCP OFFER": eth(BROADCAST, bad.mac, ETH_P_IP,
                          ipv4_udp(bad.ip, "255.255.255.255", 67, 68, b"forged DHCP offer")),
        "IPv6 router advertisement": eth("33:33:00:00:00:01", bad.mac, ETH_P_IPV6,
                                         icmp6_router_advertisement(ll, bad.mac)),
    }
    w = Wire(bad.ns)
    honest = ipv4_udp(bad.ip, victim.ip, 5000, 6000, b"honest")
    # the forged frames, then the honest datagram, again until the honest one arrives: on a
    # loaded machine a raw frame sent right after the setup was traced never entering the
    # bridge at all (also at the code of the last session); sent from one CPU, the forged
    # frames of the round whose datagram arrived had their chance before it
    end = time.monotonic() + DEADLINE
    with one_cpu():
        while True:
            w.send(*forged.values(), eth(victim.mac, bad.mac, ETH_P_IP, honest))
            if ready(udp, 0.2):
                break
            assert time.monotonic() < end, "the VM's own datagram did not arrive"
    w.close()
    assert udp.recvfrom(100) == (b"honest", (bad.ip, 5000))
    cap.wait(lambda f: f.udp() is not None and f.udp()[4] == b"honest")  # type: ignore[index]
    seen = {f.data for f in cap.received(lambda f: True)}
    arrived = [name for name, frame in forged.items() if frame in seen]
    assert arrived == [], f"forged frames reached the victim: {arrived}"
    neigh = {n["dst"]: n.get("lladdr") for n in ip_json(victim.ns, "neigh", "show", "dev", "eth0")}
    assert neigh.get(third.ip) == third.mac, neigh
    assert "10.0.0.254" not in neigh, neigh
    ping(bad, victim.ip)
    closed(talk(bad, victim, 8080))


def test_a_changed_fixed_ip_is_the_only_address_the_port_may_send_from(host: MakeHost) -> None:
    """The port's own addresses are elements of the hash sets ``ip4_host``
    / ``ip6_host``: a changed fixed IP deletes the old element (a delete
    from a hash set names the key as it is, not as a range) and adds the
    new one; datagrams from the old address no longer reach anyone, from
    the new one they do."""
    h = host([vm(1, "h1", "10.0.0.1"), vm(2, "h1", "10.0.0.2")], [group(DEFAULT)],
             default_rules(DEFAULT))
    mover, peer = h.vms[1], h.vms[2]
    udp = listen(peer, 6000, socket.SOCK_DGRAM, addr="0.0.0.0")
    ping(mover, peer.ip)
    moved = replace(mover.port, fixed_ips=(replace(mover.port.fixed_ips[0], ip_address="10.0.0.11"),))
    h.converge(replace(h.view, ports=[moved if p.id == moved.id else p for p in h.view.ports]))
    (ruleset,) = h.kernel.observe(fresh=True)[NftRuleset]
    hosts = {json.loads(e.key)["concat"][2] for e in ruleset.elements
             if e.set == "ip4_host" and json.loads(e.key)["concat"][0] == tap_name(moved.id)}
    assert hosts == {"10.0.0.11"}, hosts
    # the guest takes its new address (and keeps the old one, to try it); the peer's MAC is
    # known, so no ARP decides what passes
    for cmd in (["addr", "add", "10.0.0.11/24", "dev", "eth0"],
                ["neigh", "replace", peer.ip, "lladdr", peer.mac, "dev", "eth0", "nud", "permanent"]):
        subprocess.run(["ip", "-n", mover.ns, *cmd], check=True)
    with one_cpu():  # sent in order from one CPU: the old address's datagram had its chance first
        for source in ("10.0.0.1", "10.0.0.11"):
            out = in_netns(mover.ns, socket.AF_INET, socket.SOCK_DGRAM)
            out.bind((source, 5000))
            out.sendto(source.encode(), (peer.ip, 6000))
            out.close()
    assert ready(udp), "nothing from the new address arrived"
    assert udp.recvfrom(100) == (b"10.0.0.11", ("10.0.0.11", 5000)), "the old address got through"


def test_an_allowed_address_pair_lets_a_vip_move_and_nobody_else_take_it(host: MakeHost) -> None:
    vip = "10.0.0.100"
    pair = (AddressPair(ip_address=vip, mac_address=""),)
    h = host([vm(1, "h1", "10.0.0.1", allowed_address_pairs=pair),
              vm(2, "h1", "10.0.0.2", allowed_address_pairs=pair),
              vm(3, "h1", "10.0.0.3"), vm(4, "h1", "10.0.0.4")],
             [group(DEFAULT)], default_rules(DEFAULT))
    active, standby, client, thief = h.vms[1], h.vms[2], h.vms[3], h.vms[4]
    cap = Capture(client.ns)
    take_vip(active, vip)
    srv = listen(active, 80, addr=vip)
    closed(talk(client, active, 80, dst=vip, srv=srv))
    # a VM without the pair claims the VIP: nobody hears it, the VIP stays
    take_vip(thief, vip)
    garp = eth(BROADCAST, thief.mac, ETH_P_ARP, arp(1, thief.mac, vip, ZERO_MAC, vip))
    w = Wire(thief.ns)
    w.send(garp, arp_marker(thief, client))
    w.close()
    cap.wait(is_arp_marker(thief, client))
    assert cap.received(lambda f: f.data == garp) == []
    closed(talk(client, active, 80, dst=vip, srv=srv))
    # keepalived-style takeover: the standby takes the VIP and announces it
    subprocess.run(["ip", "-n", active.ns, "addr", "del", f"{vip}/24", "dev", "eth0"], check=True)
    take_vip(standby, vip)
    w = Wire(standby.ns)
    w.send(eth(BROADCAST, standby.mac, ETH_P_ARP, arp(1, standby.mac, vip, ZERO_MAC, vip)))
    w.close()
    end = time.monotonic() + DEADLINE
    while neighbour(client, vip) != standby.mac:
        assert time.monotonic() < end, f"the client still sends {vip} to {neighbour(client, vip)}"
    closed(talk(client, standby, 80, dst=vip))


def take_vip(v: Vm, vip: str) -> None:
    subprocess.run(["ip", "-n", v.ns, "addr", "add", f"{vip}/24", "dev", "eth0", "nodad"], check=True)


def neighbour(v: Vm, ip: str) -> str | None:
    found = ip_json(v.ns, "neigh", "show", ip, "dev", "eth0")
    return found[0].get("lladdr") if found else None


# --- (d) two networks, one CIDR ----------------------------------------------------------

def test_two_networks_with_one_cidr_keep_separate_connection_state(host: MakeHost) -> None:
    only_out = "0e000000-0000-4000-8000-00000000000e"
    server = "5e000000-0000-4000-8000-000000000005"
    rules = [*default_rules(DEFAULT), rule(40, only_out, "egress"),
             rule(41, server, protocol="tcp", port_range_min=8080, port_range_max=8080),
             rule(42, server, "egress")]
    h = host([vm(1, "h1", "10.0.0.1"), vm(2, "h1", "10.0.0.2"),
              vm(3, "h1", "10.0.0.1", (only_out,), network=NET_B),
              vm(4, "h1", "10.0.0.2", (server,), network=NET_B)],
             [group(DEFAULT), group(only_out), group(server)], rules)
    a1, a2, b1, b2 = (h.vms[n] for n in (1, 2, 3, 4))
    # the same connection (same addresses and ports) in both networks at once
    a, b = talk(a1, a2, 8080, sport=40000), talk(b1, b2, 8080, sport=40000)
    for _ in range(3):
        for c, s in (a, b):
            exchange(c, s, b"to the server")
            exchange(s, c, b"to the client")
    # each zone's dump holds its own entry only (one dump, filtered by zone in conntrack.py)
    za, zb = (compile_firewall(h.view, plan_host(h.view).port_devices).zones[n] for n in (NET_A, NET_B))
    for zone in (za, zb):
        got = [f for f in h.kernel.conntrack_flows({zone}) if f.proto == 6]
        assert [(f.zone, f.src, f.sport, f.dport) for f in got] == [(zone, a1.ip, 40000, 8080)], got
    assert sorted(f.zone for f in h.kernel.conntrack_flows({za, zb}) if f.proto == 6) == sorted((za, zb))
    closed(a)
    closed(b)
    # a datagram a1 -> a2 makes 10.0.0.2:6000 -> 10.0.0.1:5000 a reply in A only
    sa, a2s = listen(a1, 5000, socket.SOCK_DGRAM), listen(a2, 6000, socket.SOCK_DGRAM)
    sb, b2s = listen(b1, 5000, socket.SOCK_DGRAM), listen(b2, 6000, socket.SOCK_DGRAM)
    cap = Capture(b1.ns)
    sa.sendto(b"hello", (a2.ip, 6000))
    assert ready(a2s) and a2s.recvfrom(100)[0] == b"hello"
    b2s.sendto(b"not a reply", (b1.ip, 5000))  # b1 admits nothing new
    a2s.sendto(b"a reply", (a1.ip, 5000))
    assert ready(sa) and sa.recvfrom(100)[0] == b"a reply"
    _then_marker(b2, b1, cap)
    assert not ready(sb, 0), "a datagram in network B passed as a reply in network A"


# --- stateless groups --------------------------------------------------------------------

def test_a_stateless_port_meets_its_rules_on_every_packet_and_its_peer_stays_stateful(
        host: MakeHost) -> None:
    # answers of the server, and to connections the group's ports open (Linux's ephemeral ports)
    answers = [rule(51, LOOSE, "egress", protocol="tcp", port_range_min=1, port_range_max=65535),
               rule(52, LOOSE, protocol="tcp", port_range_min=32768, port_range_max=60999)]
    rules = [*default_rules(DEFAULT), rule(50, LOOSE, protocol="tcp", port_range_min=8080,
                                           port_range_max=8080)]
    groups = [group(DEFAULT), group(LOOSE, stateful=False)]
    h = host([vm(1, "h1", "10.0.0.1"), vm(2, "h1", "10.0.0.2", (LOOSE,)),
              vm(3, "h1", "10.0.0.3", (LOOSE,))], groups, rules)
    client, server, loose = h.vms[1], h.vms[2], h.vms[3]
    srv = listen(server, 8080)
    # no conntrack for the server: its answers need a rule of their own
    cap = Capture(client.ns)
    blocked_answer(client, server, 8080, cap)
    assert not ready(srv, 0)  # the handshake never completed
    h.converge(replace(h.view, security_group_rules=[*rules, *answers]))
    # with them, the stateful client gets its answers (its own rules admit
    # nothing from the server: they are replies of the client's connection)
    closed(talk(client, server, 8080, srv=srv))
    # between two stateless ports nothing is tracked at all
    closed(talk(loose, server, 8080, srv=srv))
    assert [e for e in conntrack(h) if f"src={loose.ip} " in e] == []
    assert [e for e in conntrack(h) if f"src={client.ip} " in e] != []


def blocked_answer(client: Vm, server: Vm, port: int, cap: Capture) -> None:
    """``client`` connects to ``server``:``port``; the SYN arrives and the
    server's SYN-ACK leaves it, but never reaches the client."""
    out = Capture(server.ns)
    c = in_netns(client.ns)
    c.setblocking(False)
    c.connect_ex((server.ip, port))

    def syn_ack(f: Frame) -> bool:
        ip = f.ipv4()
        return ip is not None and ip[:3] == (server.ip, client.ip, 6) and ip[3][13] & 0x12 == 0x12

    try:
        out.wait(syn_ack, outgoing=True)
        _then_marker(server, client, cap)
        assert cap.received(syn_ack) == []
    finally:
        c.close()
        out.close()


def conntrack(h: Host) -> list[str]:
    return subprocess.run(["ip", "netns", "exec", h.ns, "cat", "/proc/net/nf_conntrack"],
                          capture_output=True, text=True, check=True).stdout.splitlines()


def closed_flows(h: Host) -> list[tuple[str, str, int, int]]:
    """(source, destination, source port, destination port) of the TCP
    flows in the ``closed4`` set, as nft lists them."""
    out = subprocess.run(["ip", "netns", "exec", h.ns, "nft", "-j", "list", "set", "inet", FW_TABLE,
                          "closed4"], capture_output=True, text=True, check=True).stdout
    elems = [i["set"] for i in json.loads(out)["nftables"] if "set" in i][0].get("elem", [])
    keys = [e["elem"]["val"]["concat"] if "elem" in e else e["concat"] for e in elems]
    return [(k[0], k[1], int(k[3]), int(k[4])) for k in keys]


# --- a removed rule closes the connections it admitted -----------------------------------

def test_removing_a_rule_stops_its_connections_both_ways_and_keeps_the_others(host: MakeHost) -> None:
    """The client has no port security (as a client on another host: only
    the server's rules decide here), so once tcp/22's entry is deleted the
    server's next segment is the one that would reopen it (conntrack picks
    up mid-stream packets, nf_conntrack_tcp_loose): its egress is open,
    only the closed set (the sweep put the flow there; the chains look it
    up both ways) stops it."""
    rules = [rule(60, WEB, protocol="tcp", port_range_min=22, port_range_max=22,
                  remote_ip_prefix="10.0.0.0/24"),
             rule(61, WEB, protocol="tcp", port_range_min=8080, port_range_max=8080),
             rule(62, WEB, "egress")]
    h = host([vm(1, "h1", "10.0.0.1", (WEB,)), vm(2, "h1", "10.0.0.2", (), port_security_enabled=False)],
             [group(WEB)], rules)
    server, client = h.vms[1], h.vms[2]
    ssh, web = talk(client, server, 22), talk(client, server, 8080)
    swept = h.converge(replace(h.view, security_group_rules=rules[1:]))
    assert [(f.dst, f.dport) for f in swept] == [(server.ip, 22)], swept
    assert not [e for e in conntrack(h) if "dport=22 " in e], conntrack(h)
    held = closed_flows(h)
    assert held == [(client.ip, server.ip, ssh[0].getsockname()[1], 22)], held
    # the server's data on the ssh connection leaves it and never reaches the client ...
    stopped(server, client, ssh[1], lambda ip: ip[:2] == (server.ip, client.ip) and _sport(ip) == 22)
    # ... nor the client's the server
    stopped(client, server, ssh[0], lambda ip: ip[:2] == (client.ip, server.ip) and _dport(ip) == 22)
    # the connection a remaining rule admits carries data both ways, as before
    for _ in range(3):
        exchange(web[0], web[1], b"still admitted")
        exchange(web[1], web[0], b"and answered")
    srv = listen(server, 22, addr="10.0.0.1")
    blocked_syn(client, server, 22, Capture(server.ns))
    assert not ready(srv, 0)
    closed(ssh)
    closed(web)


def zones(h: Host) -> list[int]:
    return sorted(compile_firewall(h.view, plan_host(h.view).port_devices).zones.values())


def test_a_connection_whose_entry_vanished_is_picked_up_when_the_rules_admit_it(host: MakeHost) -> None:
    """An entry gone without the sweep (deleted by hand here, as ``conntrack
    -D``, an idle timeout or a VM arriving by live migration would leave
    it): the next segment, from either side, is a new connection for
    conntrack, and the rules admit it, so the connection carries data on
    as in Neutron; only flows the sweep closed are dropped.  The pickup
    is an entry in the network's zone again, oriented from the server
    (its segment came first)."""
    rules = [rule(63, WEB, protocol="tcp", port_range_min=22, port_range_max=22), rule(64, WEB, "egress")]
    h = host([vm(1, "h1", "10.0.0.1", (WEB,)), vm(2, "h1", "10.0.0.2", (), port_security_enabled=False)],
             [group(WEB)], rules)
    server, client = h.vms[1], h.vms[2]
    ssh = talk(client, server, 22)
    mine = [f for f in h.kernel.conntrack_flows(zones(h)) if f.proto == 6 and f.dport == 22]
    assert [(f.src, f.dst) for f in mine] == [(client.ip, server.ip)], mine
    assert h.kernel.conntrack_delete(mine) == 1
    assert not [f for f in h.kernel.conntrack_flows(zones(h)) if f.proto == 6 and 22 in (f.sport, f.dport)]
    exchange(ssh[1], ssh[0], b"the server speaks first after the entry went")
    exchange(ssh[0], ssh[1], b"and the client answers")
    picked = [f for f in h.kernel.conntrack_flows(zones(h)) if f.proto == 6 and 22 in (f.sport, f.dport)]
    assert [(f.src, f.sport, f.dst) for f in picked] == [(server.ip, 22, client.ip)], picked
    closed(ssh)


def test_removing_a_rule_stops_pings_and_udp_until_the_server_speaks_first(host: MakeHost) -> None:
    """ICMP and UDP entries go like TCP's; the next echo request or datagram
    of the client is new and meets the new rules.  UDP's gap, as in every
    stateful firewall: a datagram the server sends first (its egress is
    open) opens the flow again from its side, and the client's datagrams
    then pass as its replies."""
    rules = [rule(90, WEB, protocol="udp", port_range_min=5353, port_range_max=5353),
             rule(91, WEB, protocol="icmp"), rule(92, WEB, "egress")]
    h = host([vm(1, "h1", "10.0.0.1", (WEB,)), vm(2, "h1", "10.0.0.2", (), port_security_enabled=False)],
             [group(WEB)], rules)
    server, client = h.vms[1], h.vms[2]
    echo = in_netns(client.ns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    echo.sendto(b"\x08\x00\xf7\xfe\x00\x01\x00\x00", (server.ip, 0))  # id 1, as blocked_echo sends
    assert ready(echo) and echo.recvfrom(100)[0][20:21] == b"\x00"  # the echo reply
    srv, cli = listen(server, 5353, socket.SOCK_DGRAM), listen(client, 6000, socket.SOCK_DGRAM)
    cli.connect((server.ip, 5353))
    cli.send(b"query")
    assert ready(srv) and srv.recvfrom(100) == (b"query", (client.ip, 6000))
    swept = h.converge(replace(h.view, security_group_rules=rules[2:]))
    assert sorted(f.proto for f in swept) == [1, 17], swept
    blocked_echo(client, server, Capture(server.ns))  # the same echo flow, now new: dropped
    cap, out = Capture(server.ns), Capture(client.ns)
    cli.send(b"after the rule is gone")
    out.wait(lambda f: (u := f.udp()) is not None and u[4] == b"after the rule is gone", outgoing=True)
    _then_marker(client, server, cap)
    assert not ready(srv, 0), "the client's datagram arrived after its rule was removed"
    srv.sendto(b"the server speaks first", (client.ip, 6000))
    assert ready(cli) and cli.recv(100) == b"the server speaks first"
    cli.send(b"a reply now")
    assert ready(srv) and srv.recvfrom(100)[0] == b"a reply now"
    for s in (echo, srv, cli, cap.sock, out.sock):
        s.close()


def stopped(sender: Vm, receiver: Vm, sock: socket.socket,
            seg: Callable[[tuple[str, str, int, bytes]], bool]) -> None:
    """Data sent on ``sock`` leaves ``sender`` and no segment of it arrives."""
    cap, out = Capture(receiver.ns), Capture(sender.ns)
    try:
        sock.sendall(b"after the rule is gone")

        def data(f: Frame) -> bool:
            ip = f.ipv4()
            return ip is not None and ip[2] == 6 and seg(ip) and len(ip[3]) > (ip[3][12] >> 4) * 4

        out.wait(data, outgoing=True)
        _then_marker(sender, receiver, cap)
        assert cap.received(lambda f: (ip := f.ipv4()) is not None and ip[2] == 6 and seg(ip)) == []
    finally:
        cap.close()
        out.close()


def _sport(ip: tuple[str, str, int, bytes]) -> int:
    return int.from_bytes(ip[3][0:2], "big")


def _dport(ip: tuple[str, str, int, bytes]) -> int:
    return int.from_bytes(ip[3][2:4], "big")


# --- a change the kernel refuses in part --------------------------------------------------

def test_a_rule_the_kernel_refuses_is_reported_on_its_port_and_the_rest_works(host: MakeHost) -> None:
    """A real refusal: between the agent's observe and its apply an operator
    puts tcp/20-30 from 10.0.0.0/8 under the web group's tag into
    ``in4_port`` by hand, so the kernel refuses the new tcp/22 rule's
    element (inside it: the interval set refuses overlaps) and with it the
    whole batch.  The subsystem applies everything else: the db rule works
    and its port is ACTIVE; only the web port is DOWN, naming the rule.  The
    next pass deletes the stray element and adds the rule."""
    h = host([vm(1, "h1", "10.0.0.1", (WEB,)), vm(2, "h1", "10.0.0.2", (DB,)),
              vm(3, "h1", "10.0.0.3", (), port_security_enabled=False)],
             [group(WEB), group(DB)], [rule(82, WEB, "egress"), rule(83, DB, "egress")])
    web, db, client = h.vms[1], h.vms[2], h.vms[3]
    ssh = rule(80, WEB, protocol="tcp", port_range_min=22, port_range_max=22,
               remote_ip_prefix="10.0.0.0/24")
    pg = rule(81, DB, protocol="tcp", port_range_min=5432, port_range_max=5432)
    view = replace(h.view, security_group_rules=[*h.view.security_group_rules, ssh, pg])
    plan = plan_host(view)
    tag = compile_firewall(view, plan.port_devices).tags[(WEB,)]
    observed = h.kernel.observe()
    changes = diff(plan.state, observed)
    subprocess.run(["ip", "netns", "exec", h.ns, "nft", "add", "element", "inet", FW_TABLE, "in4_port",
                    f"{{ 10.0.0.0/8 . 20-30 . 6 . {tag} }}"], check=True)
    errors = h.kernel.apply(changes)
    st = port_statuses(plan, observed, errors, changes)
    (err,) = errors
    assert [id_ for id_, _ in err.refused] == [ssh.id], err.message
    assert st[web.port.id].status == "DOWN", st
    assert st[web.port.id].reason == \
        f"security group rule {ssh.id}: Error: Could not process rule: File exists", st
    assert st[db.port.id].status == "ACTIVE" and st[client.port.id].status == "ACTIVE", st
    closed(talk(client, db, 5432))  # the db rule is in the kernel
    # the next pass: the stray element goes, the rule comes
    done = reconcile(h.kernel, plan.state)
    assert done.errors == (), [e.render() for e in done.errors]
    st = port_statuses(plan, done.observed, done.errors, done.changes)
    assert {s.status for s in st.values()} == {"ACTIVE"}, st
    closed(talk(client, web, 22))


# --- (g) fail closed ---------------------------------------------------------------------

def test_a_port_without_its_rules_passes_nothing_either_way(host: MakeHost) -> None:
    """A tap in Overcast's port group on its bridge whose elements do not
    exist (the moment between the attach and the ruleset, or elements
    removed by hand) is dropped both ways; its elements open it."""
    h = host([vm(1, "h1", "10.0.0.1"), vm(2, "h1", "10.0.0.2"), vm(3, "h1", "10.0.0.3")],
             [group(DEFAULT)], default_rules(DEFAULT))
    full = h.view
    one, two, new = h.vms[1], h.vms[2], h.vms[3]
    ping(one, two.ip)
    ping(new, one.ip)
    h.converge(replace(full, ports=[one.port, two.port]))
    subprocess.run(["ip", "-n", h.ns, "link", "set", tap_name(new.port.id), "master",
                    bridge_name(NET_A), "group", str(PORT_GROUP), "up"], check=True)
    # from the new port: its ARP request and ping leave and reach nobody
    heard = [Capture(one.ns), Capture(two.ns)]
    out = Capture(new.ns)
    w = Wire(new.ns)
    try:
        w.send(arp_marker(new, one))
        out.wait(is_arp_marker(new, one), outgoing=True)
        _then_marker(one, two, heard[1])
        assert [c.received(is_arp_marker(new, one)) for c in heard] == [[], []]
        # to the new port: a broadcast that the other member hears
        cap_new = Capture(new.ns)
        _then_marker(one, two, heard[1])
        assert cap_new.received(is_arp_marker(one, two)) == []
        cap_new.close()
    finally:
        w.close()
        out.close()
        for c in heard:
            c.close()
    h.converge(full)
    ping(new, one.ip)
    ping(one, new.ip)


# --- (h) IPv6 in IPv6, after the extension headers ----------------------------------------

def link_local(mac: str) -> str:
    """The EUI-64 link-local address of ``mac`` (what anti-spoofing allows)."""
    b = bytearray(bytes.fromhex(mac.replace(":", "")))
    b[0] ^= 0x02
    return str(IPv6Address(b"\xfe\x80" + b"\x00" * 6 + bytes(b[:3]) + b"\xff\xfe" + bytes(b[3:])))


def ipv6_packet(src: Vm, dst: Vm, nexthdr: int, payload: bytes) -> bytes:
    head = struct.pack("!IHBB", 6 << 28, len(payload), nexthdr, 64)
    return head + IPv6Address(link_local(src.mac)).packed + IPv6Address(link_local(dst.mac)).packed \
        + payload


def _is(frame: bytes) -> Callable[[Frame], bool]:
    return lambda f: f.data == frame


def test_an_ipv6_encap_rule_admits_ipv6_in_ipv6_and_nothing_else(host: MakeHost) -> None:
    """ipv6-encap (41) is matched by meta l4proto, also behind a destination
    options header (which l4proto skips); a packet of another protocol from
    the same VM is dropped."""
    rules = [*default_rules(DEFAULT), rule(40, WEB, ethertype="IPv6", protocol="ipv6-encap")]
    h = host([vm(1, "h1", "10.0.0.1", (DEFAULT, WEB)), vm(2, "h1", "10.0.0.2")],
             [group(DEFAULT), group(WEB)], rules)
    server, client = h.vms[1], h.vms[2]
    ping(client, server.ip)  # the bridge learns where the server's MAC is
    inner = ipv6_packet(client, server, 59, b"inner")
    dstopts = bytes([41, 0, 1, 4, 0, 0, 0, 0])  # next header 41, PadN
    packets = {"encap": ipv6_packet(client, server, 41, inner),
               "encap after options": ipv6_packet(client, server, 60, dstopts + inner),
               "experimental": ipv6_packet(client, server, 253, b"experimental")}
    frames = {name: eth(server.mac, client.mac, ETH_P_IPV6, p) for name, p in packets.items()}
    cap = Capture(server.ns)
    w = Wire(client.ns)
    try:
        w.send(frames["experimental"], frames["encap"], frames["encap after options"])
        for name in ("encap", "encap after options"):
            cap.wait(_is(frames[name]))
        _then_marker(client, server, cap)
        assert cap.received(lambda f: f.data == frames["experimental"]) == []
    finally:
        w.close()
        cap.close()


# --- a change to a large set: in force through its revoked and staged sets first --------

def test_revoked_and_staged_keys_are_in_force_at_once_and_leave_the_other_sets_alone(
        host: MakeHost) -> None:
    """With more rules in ``in4_port`` than ``STAGE_FROM``, a rule's key put
    in ``in4_port_revoked`` (the first batch of its removal,
    ``firewall_apply``) is closed at once while its element is still in
    the set, and an element put in ``in4_port_staged`` (the first batch of
    an add) is open before the set has it; a rule of another set admitting
    the same port stays in force; a removal and an add through the agent's
    path end with both sets empty and the rule set as the rules say."""
    fillers = [rule(1000 + i, WEB, protocol="tcp", port_range_min=20000 + 2 * i,
                    port_range_max=20000 + 2 * i, remote_ip_prefix="10.0.0.0/30")
               for i in range(STAGE_FROM + 10)]
    ssh = rule(70, WEB, protocol="tcp", port_range_min=22, port_range_max=22,
               remote_ip_prefix="10.0.0.0/30")
    ssh_any = rule(71, WEB, protocol="tcp", port_range_min=22, port_range_max=22)
    rules = [*fillers, ssh, ssh_any, rule(72, WEB, "egress")]
    h = host([vm(1, "h1", "10.0.0.1", (WEB,)), vm(2, "h1", "10.0.0.2", (WEB,))], [group(WEB)], rules)
    server, client = h.vms[1], h.vms[2]
    (ruleset,) = h.kernel.observe()[NftRuleset]

    def element(r: SecurityGroupRule) -> NftElement:
        (e,) = [e for e in ruleset.elements if e.set == "in4_port" and r.id in e.comment]
        return e

    closed(talk(client, server, 20000))
    h.kernel.nft(firewall_apply._elements_op("add", [element(fillers[0]), element(ssh)], {},
                                             side=revoked_set))
    blocked_syn(client, server, 20000, Capture(server.ns))
    closed(talk(client, server, 20002))  # its neighbour in the set
    closed(talk(client, server, 22))  # revoked in in4_port, admitted by in4_port_any
    blocked_syn(client, server, 7000, Capture(server.ns))
    one = element(fillers[0])._replace(key=element(fillers[0]).key.replace("20000", "7000"))
    h.kernel.nft(firewall_apply._elements_op("add", [one], {}, side=staged_set))
    closed(talk(client, server, 7000))  # staged: open before in4_port has it
    # a removal and an add through the agent's path
    later = [r for r in rules if r is not fillers[1]]
    later.append(rule(73, WEB, protocol="tcp", port_range_min=8000, port_range_max=8000,
                      remote_ip_prefix="10.0.0.0/30"))
    h.converge(replace(h.view, security_group_rules=later))
    (after,) = h.kernel.observe()[NftRuleset]
    assert not [e for e in after.elements if e.set.endswith(("_revoked", "_staged"))]
    blocked_syn(client, server, 20002, Capture(server.ns))
    blocked_syn(client, server, 7000, Capture(server.ns))  # the hand-staged key went
    closed(talk(client, server, 20000))  # the hand-revoked key went with the change
    closed(talk(client, server, 8000))
