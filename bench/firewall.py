"""The firewall's cost, side by side with no firewall and a hand-written ruleset (root).

One run measures, on this machine's kernel, VM to VM through one host's bridge:

  (a)  no firewall: Overcast's bridge and attachments, no ruleset, br_netfilter off
  (b)  hand-written minimal nftables ruleset of the same policy (inet forward:
       ct established accept, one tcp dport rule, policy drop; br_netfilter on)
  (c)  Overcast with 10, 1,000 and 10,000 security group rules on the ports' groups
       (each filler rule its own remote /24 and port), and 10,000 rules of one remote
       (0.0.0.0/0) with distinct ports: the shape the key order leaves slow
  (d)  Overcast, the server admitting tcp from a remote group of 10,000 members
       (ports bound to other hosts) besides the client
  (e)  Overcast with 1,000 ports on the host (the measured pair among them; the
       others are veths whose far ends wait in one namespace) and the 10-rule policy
  (x)  diagnosis (``--no-diagnosis`` skips it): (b) with its tcp dport rule replaced
       by a hand-written 10,000-element interval set of (c)'s fillers, keyed as
       Overcast's keys were before a36479e (the tag first) and as they are now
       (address . port . protocol . tag)

Each host is built as the agent builds it: ``plan_host(HostView(...))`` gives the
desired state (bridge, attachments, ruleset), ``diff`` against
``NetlinkKernel.observe()`` and ``NetlinkKernel.apply`` make it (two passes: the
chains before the taps join).  Every configuration has its own host namespace with
its own client and server VM namespaces, built once; the measurements alternate
between them round by round.  Metrics: TCP throughput (iperf3, single stream) and
new TCP connections per second (``bench/conn_rate.c``, compiled with ``cc`` at start:
connect, read a byte, close, in a loop).

Then, on the 10,000-rule host (and, for scale, the 10-rule one): the latency of a
one-rule change (plan; observe; diff + apply, i.e. from the desired state to the
nft batch's return), over several changes, and what its listings and its batch
alone cost; the agent's memory for that host (a fresh process: tracemalloc of the plan
and the observed state, and its RSS); and a remote-group membership change across
3 hosts, each driven by its own ``Reconciler``/``AgentLoop`` thread over one shared
in-memory store through the in-process API: from the port update's commit (the
API's answer) to the new element in all 3 kernels, for groups of 15 and 1,015
members (``--rg-members``).

Every namespace is named ``oc-fb-<pid>-...`` and deleted at the end (also on
Ctrl-C or an error); every process is stopped by PID.

    sudo .venv/bin/python bench/firewall.py            # full run (~5 min)
    sudo .venv/bin/python bench/firewall.py --quick    # fewer rounds, shorter tests (~1.5 min)
    sudo .venv/bin/python bench/firewall.py --only remote --rg-members 10000 --rg-changes 6
    sudo .venv/bin/python bench/firewall.py --only keys    # key orders compared (~2 min)

``--only keys`` compares key orders of a hand-written 10,000-element set on
three shapes of elements (the fillers of (c): distinct /24s and ports; one
remote 0.0.0.0/0 with distinct ports; distinct /32s on one port range, as a
remote group's members), new conn/s against the hand-written minimal ruleset
(docs/firewall.md, "Key order").
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

# everything imported at start: one run measures one version of the code,
# also while other work changes the checkout
from shell import BenchError, compile_conn_rate, in_ns, ip_batch, run, stop_process  # noqa: E402

from overcast.agent import AgentLoop, Liveness, ModelView, Reconciler  # noqa: E402
from overcast.api import Api, Request  # noqa: E402
from overcast.api.config import ApiConfig  # noqa: E402
from overcast.api.quotas import NO_LIMITS  # noqa: E402
from overcast.linux import nft  # noqa: E402
from overcast.linux.devices import entered_netns  # noqa: E402
from overcast.linux.netlink import NetlinkKernel  # noqa: E402
from overcast.linux.nft import Nftables  # noqa: E402
from overcast.model.types import (  # noqa: E402
    FixedIP,
    Network,
    Port,
    SecurityGroup,
    SecurityGroupRule,
)
from overcast.plan import HostView, plan_host  # noqa: E402
from overcast.plan.diff import diff  # noqa: E402
from overcast.plan.names import FW_TABLE, bridge_name, tap_name  # noqa: E402
from overcast.plan.state import KernelState  # noqa: E402
from overcast.plan.subsystems.firewall import NftRuleset  # noqa: E402
from overcast.plan.subsystems.firewall import batch as fw_batch  # noqa: E402
from overcast.store import MemoryStore  # noqa: E402

PREFIX = f"oc-fb-{os.getpid()}-"
HAND_TABLE = "ocfb_hand"  # the hand-written ruleset's table (in our namespaces only)
NET = "fbfbfbfb-0000-4000-8000-000000000001"
NET_REMOTE = "fbfbfbfb-0000-4000-8000-000000000002"  # remote members' network (not on this host)
BENCH_GROUP = "fb000000-0000-4000-8000-000000000001"  # the measured ports' group
MEMBERS_GROUP = "fb000000-0000-4000-8000-000000000002"  # (d): the remote group
SERVER_GROUP = "fb000000-0000-4000-8000-000000000003"  # (d): the server's group
HOST, HOSTS = "h1", {"h1": "198.18.90.1", "h2": "198.18.90.2", "h3": "198.18.90.3"}
CLIENT_IP, SERVER_IP = "10.0.0.1", "10.0.0.2"
PORTS = (5201, 5400)  # the tcp dport rule: iperf3 and conn_rate ports lie in it
CONN_PORT = 5399
GOAL_CONN = 95.0  # new conn/s at 10,000 rules >= 95% of 10 rules
GOAL_TPUT = 95.0  # throughput >= 95% of no firewall
GOAL_APPLY_MS = 50.0
NETLINK_NETFILTER, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP = 12, 270, 1
NFNLGRP_NFTABLES = 7
NFT_NEWGEN = (10 << 8) | 15  # NFNL_SUBSYS_NFTABLES, NFT_MSG_NEWGEN
SYSCTLS = ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables",
           "net.bridge.bridge-nf-call-arptables")


@dataclass
class Env:
    """What this run made (namespaces, processes, kernels), undone in ``close``."""

    namespaces: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    kernels: list[NetlinkKernel] = field(default_factory=list)

    def netns(self, role: str) -> str:
        name = PREFIX + role
        if name in run(["ip", "netns", "list"]).stdout.split():
            raise BenchError(f"namespace {name} already exists")
        self.namespaces.append(name)
        run(["ip", "netns", "add", name])
        run(in_ns(name, ["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                         "net.ipv6.conf.default.disable_ipv6=1"]))
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        return name

    def kernel(self, ns: str) -> NetlinkKernel:
        self.kernels.append(NetlinkKernel(ns))
        return self.kernels[-1]

    def start(self, argv: list[str]) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(p)
        return p

    def stop(self, p: subprocess.Popen[bytes]) -> None:
        stop_process(p)
        if p.stdout is not None:
            p.stdout.close()
        if p in self.procs:
            self.procs.remove(p)

    def close(self) -> None:
        for p in list(reversed(self.procs)):
            try:
                self.stop(p)
            except Exception as exc:  # noqa: BLE001 - clean up the rest anyway
                print(f"cleanup: process {p.pid}: {exc}", file=sys.stderr)
        for k in self.kernels:
            k.close()
        self.kernels.clear()
        existing = set(run(["ip", "netns", "list"], check=False).stdout.split())
        for name in reversed(self.namespaces):
            if name.startswith(PREFIX) and name in existing:
                run(["ip", "netns", "delete", name], check=False)
        self.namespaces.clear()


# --------------------------------------------------------------------------- the model
def port_id(n: int) -> str:
    return f"{n:08x}-fb00-4000-8000-{n:012x}"


def mac(n: int) -> str:
    return f"fa:16:3e:{n >> 16 & 0xFF:02x}:{n >> 8 & 0xFF:02x}:{n & 0xFF:02x}"


def vm_port(n: int, ip: str, groups: Sequence[str], host: str = HOST,
            network: str = NET) -> Port:
    return Port(id=port_id(n), network_id=network, mac_address=mac(n), binding_host_id=host,
                fixed_ips=(FixedIP("fb-subnet", ip),), security_groups=tuple(groups))


def rule(n: int, group: str, direction: str = "ingress", **kw: Any) -> SecurityGroupRule:
    return SecurityGroupRule(id=f"{n:08x}-5e5e-4000-8000-{n:012x}", security_group_id=group,
                             direction=direction, ethertype="IPv4", **kw)


def filler(n: int, group: str, first: int = 100) -> list[SecurityGroupRule]:
    """``n`` tcp rules that the measured traffic never matches, each its own
    element: one port from one /24 of 10.128.0.0/9 (disjoint from the VMs')."""
    out = []
    for i in range(n):
        prefix = f"10.{128 + i // 256 % 128}.{i % 256}.0/24"
        out.append(rule(first + i, group, protocol="tcp", port_range_min=20000 + i % 40000,
                        port_range_max=20000 + i % 40000, remote_ip_prefix=prefix))
    return out


def one_remote_filler(n: int, group: str, first: int = 100) -> list[SecurityGroupRule]:
    """``n`` tcp rules from anywhere (0.0.0.0/0), each its own port (every
    other one of 20000-39999, so that no two are adjacent): every element's
    address field matches every packet."""
    return [rule(first + i, group, protocol="tcp", port_range_min=20000 + 2 * i,
                 port_range_max=20000 + 2 * i, remote_ip_prefix="0.0.0.0/0") for i in range(n)]


def measured_rules(group: str, total: int, fill: Callable[[int, str], list[SecurityGroupRule]]
                   = filler) -> list[SecurityGroupRule]:
    """``total`` rules in ``group``: all egress, tcp 5201-5400 from the client,
    and fillers."""
    return [rule(1, group, "egress"),
            rule(2, group, protocol="tcp", port_range_min=PORTS[0], port_range_max=PORTS[1],
                 remote_ip_prefix=f"{CLIENT_IP}/32"),
            *fill(max(0, total - 2), group)]


@dataclass
class Policy:
    """The part of a host view that differs between configurations."""

    ports: list[Port]
    groups: list[SecurityGroup]
    rules: list[SecurityGroupRule]
    firewall: bool = True

    def view(self) -> HostView:
        nets = [Network(id=NET, network_type="local", mtu=1450),
                Network(id=NET_REMOTE, network_type="vxlan", segmentation_id=4000, mtu=1450)]
        return HostView(HOST, HOSTS[HOST], dict(HOSTS), nets, list(self.ports),
                        list(self.groups), list(self.rules), self.firewall)


def two_vms(groups: Sequence[str]) -> list[Port]:
    return [vm_port(1, CLIENT_IP, groups), vm_port(2, SERVER_IP, groups)]


def rules_policy(n: int, fill: Callable[[int, str], list[SecurityGroupRule]] = filler) -> Policy:
    return Policy(two_vms([BENCH_GROUP]), [SecurityGroup(id=BENCH_GROUP)],
                  measured_rules(BENCH_GROUP, n, fill))


def remote_group_policy(members: int) -> Policy:
    """The server admits tcp 5201-5400 from the members group: the client and
    ``members`` ports on h2/h3 (one address each, every other address of
    10.64.0.0/10, so no two are adjacent)."""
    base = int(ipaddress.ip_address("10.64.0.0"))
    remote = [vm_port(1000 + i, str(ipaddress.ip_address(base + 2 * i)), [MEMBERS_GROUP],
                      host=("h2", "h3")[i % 2], network=NET_REMOTE) for i in range(members)]
    ports = [vm_port(1, CLIENT_IP, [MEMBERS_GROUP]), vm_port(2, SERVER_IP, [SERVER_GROUP]), *remote]
    rules = [rule(1, SERVER_GROUP, "egress"), rule(3, MEMBERS_GROUP, "egress"),
             rule(2, SERVER_GROUP, protocol="tcp", port_range_min=PORTS[0],
                  port_range_max=PORTS[1], remote_group_id=MEMBERS_GROUP)]
    return Policy(ports, [SecurityGroup(id=SERVER_GROUP), SecurityGroup(id=MEMBERS_GROUP)], rules)


def many_ports_policy(total: int) -> Policy:
    """``total`` ports on the host, all in the 10-rule group."""
    extra = [vm_port(10 + i, f"10.0.{4 + i // 250}.{1 + i % 250}", [BENCH_GROUP])
             for i in range(total - 2)]
    p = rules_policy(10)
    return replace(p, ports=[*p.ports, *extra])


# --------------------------------------------------------------------------- hosts
@dataclass
class Bed:
    """One configuration: its host namespace and kernel, its two VMs."""

    key: str
    label: str
    host: str
    client: str
    server: str
    kernel: NetlinkKernel | None = None
    policy: Policy | None = None
    elements: int = 0
    gbps: list[float] = field(default_factory=list)
    conns: list[float] = field(default_factory=list)
    build_s: float = 0.0


def converge(kernel: NetlinkKernel, view: HostView, passes: int = 2) -> KernelState:
    """As the agent does: plan, observe, diff, apply; the second pass
    attaches the taps once the chains exist."""
    plan = plan_host(view)
    if plan.problems:
        raise BenchError(f"plan problems: {[str(p) for p in plan.problems[:3]]}")
    for _ in range(passes):
        errors = kernel.apply(diff(plan.state, kernel.observe()))
        if errors:
            raise BenchError("kernel refused: " + "; ".join(e.render()[:300] for e in errors[:3]))
    left = diff(plan.state, kernel.observe())
    if left:
        raise BenchError(f"not converged: {[c.render()[:200] for c in left[:3]]}")
    return plan.state


def add_taps(env: Env, host_ns: str, sink: str, ports: Sequence[Port], tag: str) -> None:
    """Veths for ports without a VM namespace: the tap in the host, the far
    end (up, so the tap has carrier) in the sink namespace."""
    lines, far = [], []
    for i, p in enumerate(ports):
        peer = f"{tag}{i}"
        lines.append(f"link add {tap_name(p.id)} mtu 1450 type veth peer name {peer} "
                     f"netns {sink} mtu 1450")
        far.append(f"link set {peer} up")
    for chunk in range(0, len(lines), 500):
        ip_batch(host_ns, lines[chunk:chunk + 500])
    for chunk in range(0, len(far), 500):
        ip_batch(sink, far[chunk:chunk + 500])


def add_vm(env: Env, host_ns: str, role: str, port: Port) -> str:
    ns = env.netns(role)
    ip = port.fixed_ips[0].ip_address
    run(["ip", "-n", host_ns, "link", "add", tap_name(port.id), "mtu", "1450", "type", "veth",
         "peer", "name", "eth0", "netns", ns])
    ip_batch(ns, [f"link set eth0 address {port.mac_address} mtu 1450 up",
                  f"addr add {ip}/16 dev eth0"])
    return ns


@dataclass(frozen=True)
class Config:
    """One configuration: ``hand`` is "" (Overcast's ruleset, or none with the
    policy's firewall off), "plain" (the hand-written ruleset), or a key
    order of ``BIG_KEYS`` (hand-written with an ``n``-element set)."""

    key: str
    label: str
    make: Callable[[], Policy]
    hand: str = ""
    n: int = 0


def build(env: Env, sink: str, cfg: Config) -> Bed:
    key, label, policy = cfg.key, cfg.label, cfg.make()
    t0 = time.monotonic()
    host = env.netns(f"{key}-h")
    run(in_ns(host, ["sysctl", "-q", "-w", *(f"{k}=0" for k in SYSCTLS)]))
    client = add_vm(env, host, f"{key}-c", policy.ports[0])
    server = add_vm(env, host, f"{key}-s", policy.ports[1])
    if len(policy.ports) > 2 and policy.ports[2].binding_host_id == HOST:
        add_taps(env, host, sink, [p for p in policy.ports[2:] if p.binding_host_id == HOST],
                 f"p{key[:3]}")
    kernel = env.kernel(host)
    converge(kernel, policy.view())
    bed = Bed(key, label, host, client, server, kernel, policy)
    if cfg.hand:
        hand_ruleset(host, bridge_name(NET), "" if cfg.hand == "plain" else cfg.hand, cfg.n)
    bed.elements = cfg.n or elements(kernel)
    bed.build_s = time.monotonic() - t0
    return bed


# the big hand-written set's key, both orders: Overcast's before a36479e (the group
# set's tag first, shared by every element of one group set) and Overcast's now
# (address . port . protocol . tag)
BIG_KEYS = {
    "tag": ("mark . ipv4_addr . inet_proto . inet_service",
            "meta mark . ip saddr . meta l4proto . th dport", "0x5 . {a} . tcp . {p}"),
    "addr": ("ipv4_addr . inet_service . inet_proto . mark",
             "ip saddr . th dport . meta l4proto . meta mark", "{a} . {p} . tcp . 0x5"),
}


def hand_ruleset(host: str, bridge: str, big: str = "", n: int = 0) -> None:
    """(b): the same policy written by hand, as a few lines of nft, with
    br_netfilter switched on on the bridge (the same option Overcast sets).
    With ``big``: the tcp dport rule is instead an ``n``-element interval set
    of tcp rules shaped as Overcast's fillers, keyed in the order ``big``
    (a diagnosis: what the kernel's set costs per new connection)."""
    run(["ip", "-n", host, "link", "set", "dev", bridge, "type", "bridge",
         "nf_call_iptables", "1", "nf_call_ip6tables", "1"])
    admit = f"ip daddr {SERVER_IP} tcp dport {PORTS[0]}-{PORTS[1]} accept"
    head = ""
    if big:
        type_, expr, elem = BIG_KEYS[big]
        keys = [(CLIENT_IP, f"{PORTS[0]}-{PORTS[1]}")]
        keys += [(f"10.{128 + i // 256 % 128}.{i % 256}.0/24", str(20000 + i % 40000))
                 for i in range(n - 1)]
        head = (f"  set big {{ type {type_}; flags interval; elements = {{ "
                f"{', '.join(elem.format(a=a, p=p) for a, p in keys)} }} }}\n")
        admit = f"meta mark set 0x5 ct state new {expr} @big accept"
    text = f"""table inet {HAND_TABLE} {{
  comment "oc-fb:hand"
{head}  chain forward {{
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    ct state invalid drop
    {admit}
    ip saddr {CLIENT_IP} accept
  }}
}}
"""
    run(in_ns(host, ["nft", "-f", "-"]), stdin=text)


# --only keys: each field's set type and packet expression; the shapes of elements
KEY_FIELDS = {"addr": ("ipv4_addr", "ip saddr"), "port": ("inet_service", "th dport"),
              "proto": ("inet_proto", "meta l4proto"), "tag": ("mark", "meta mark")}
KEY_ORDERS = {"tag first (before a36479e)": ("tag", "addr", "proto", "port"),
              "addr . proto . port": ("addr", "proto", "port", "tag"),
              "addr . port . proto (Overcast's)": ("addr", "port", "proto", "tag"),
              "port . addr . proto": ("port", "addr", "proto", "tag")}


def key_shape(shape: str, n: int) -> list[dict[str, str]]:
    """The measured element (tcp 5201-5400 from the client) and ``n - 1``
    others of ``shape``, none of which the measured traffic matches."""
    out = [{"addr": CLIENT_IP, "port": f"{PORTS[0]}-{PORTS[1]}"}]
    for i in range(n - 1):
        if shape == "distinct /24s and ports":
            out.append({"addr": f"10.{128 + i // 256 % 128}.{i % 256}.0/24", "port": str(20000 + i % 40000)})
        elif shape == "one remote 0.0.0.0/0, distinct ports":
            out.append({"addr": "0.0.0.0/0", "port": str(20000 + i)})
        else:  # distinct /32s, one port range
            out.append({"addr": f"10.{64 + i // 65536}.{i // 256 % 256}.{i % 256}",
                        "port": f"{PORTS[0]}-{PORTS[1]}"})
    return [{**e, "proto": "tcp", "tag": "0x5"} for e in out]


KEY_SHAPES = ("distinct /24s and ports", "one remote 0.0.0.0/0, distinct ports",
              "distinct /32s, one port range")


def key_ruleset(host: str, order: tuple[str, ...], shape: str, n: int) -> None:
    """(b) with its tcp dport rule replaced by an ``n``-element set of
    ``shape`` keyed in ``order``."""
    run(["ip", "-n", host, "link", "set", "dev", bridge_name(NET), "type", "bridge",
         "nf_call_iptables", "1", "nf_call_ip6tables", "1"])
    type_ = " . ".join(KEY_FIELDS[f][0] for f in order)
    expr = " . ".join(KEY_FIELDS[f][1] for f in order)
    elems = ", ".join(" . ".join(e[f] for f in order) for e in key_shape(shape, n))
    text = f"""table inet {HAND_TABLE} {{
  comment "oc-fb:keys"
  set big {{ type {type_}; flags interval; elements = {{ {elems} }} }}
  chain forward {{
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    ct state invalid drop
    meta mark set 0x5 ct state new {expr} @big accept
    ip saddr {CLIENT_IP} accept
  }}
}}
"""
    run(in_ns(host, ["nft", "-f", "-"]), stdin=text, timeout=300)


def key_orders(env: Env, sink: str, tool: Path, args: argparse.Namespace) -> list[str]:
    """--only keys: one host per (shape, order) and the plain hand-written
    one, conn/s in interleaved rounds; the report's lines."""
    nofw = replace(rules_policy(2), firewall=False)
    plain = build(env, sink, Config("kplain", "(b)", lambda: nofw, "plain"))
    beds: list[tuple[str, str, Bed]] = []
    for i, shape in enumerate(KEY_SHAPES):
        for j, (name, order) in enumerate(KEY_ORDERS.items()):
            print(f"building {shape}, {name} ...", flush=True)
            bed = build(env, sink, Config(f"k{i}{j}", f"{shape}, {name}", lambda: nofw))
            key_ruleset(bed.host, order, shape, args.rules_max)
            beds.append((shape, name, bed))
    every = [plain, *(b for _, _, b in beds)]
    for b in every:
        conn_rate(env, tool, b, 0.3, strict=False)
    for r in range(args.rounds):
        print(f"  [{r + 1}/{args.rounds}] ...", flush=True)
        for b in every if r % 2 == 0 else list(reversed(every)):
            b.conns.append(conn_rate(env, tool, b, args.conn_seconds))
    lines = [f"key orders: a hand-written {args.rules_max:,}-element set, new conn/s (conn_rate "
             f"{args.conn_seconds:g}s, {args.rounds} interleaved rounds) as a share of (b) "
             f"{med(plain.conns):.0f} / {best(plain.conns):.0f} (med/best)"]
    for shape, name, b in beds:
        lines.append(f"  {shape:<40} {name:<34} {med(b.conns):>7.0f} {best(b.conns):>7.0f}"
                     f"  {share(b.conns, plain.conns)}")
    return lines


def elements(kernel: NetlinkKernel) -> int:
    rulesets = kernel.observe()[NftRuleset]
    return len(rulesets[0].elements) if rulesets else 0


# --------------------------------------------------------------------------- traffic
_port = [PORTS[0]]


def wait_listening(ns: str, port: int, deadline: float) -> None:
    """Until ``ss`` in ``ns`` shows a listener on ``port``."""
    while time.monotonic() < deadline:
        out = run(in_ns(ns, ["ss", "-Hltn", f"sport = :{port}"]), check=False).stdout
        if out.strip():
            return
        time.sleep(0.02)
    raise BenchError(f"nothing listens on {port} in {ns}")


def iperf(env: Env, bed: Bed, seconds: float) -> float:
    _port[0] = _port[0] + 1 if _port[0] < CONN_PORT - 1 else PORTS[0]
    port = str(_port[0])
    srv = env.start(in_ns(bed.server, ["iperf3", "-s", "-1", "-B", SERVER_IP, "-p", port]))
    try:
        wait_listening(bed.server, int(port), time.monotonic() + 10)
        p = run(in_ns(bed.client, ["iperf3", "-c", SERVER_IP, "-p", port, "-t", str(seconds),
                                   "-J"]), check=False, timeout=seconds + 30)
        try:
            data = json.loads(p.stdout)
        except ValueError:
            raise BenchError(f"iperf3 {bed.label}: {p.stderr[-300:]}") from None
        if "error" in data:
            raise BenchError(f"iperf3 {bed.label}: {data['error']}")
        return float(data["end"]["sum_received"]["bits_per_second"]) / 1e9
    finally:
        env.stop(srv)


def conn_rate(env: Env, tool: Path, bed: Bed, seconds: float, strict: bool = True) -> float:
    srv = env.start(in_ns(bed.server, [str(tool), "server", SERVER_IP, str(CONN_PORT)]))
    try:
        wait_listening(bed.server, CONN_PORT, time.monotonic() + 10)
        out = run(in_ns(bed.client, [str(tool), "client", SERVER_IP, str(CONN_PORT),
                                     str(seconds)]), timeout=seconds + 30).stdout.split()
        done, elapsed, failed = int(out[0]), float(out[1]), int(out[2])
        if strict and failed > done // 100:
            raise BenchError(f"{bed.label}: {failed} of {done + failed} connections failed")
        return done / elapsed
    finally:
        env.stop(srv)


# --------------------------------------------------------------------------- apply latency
@dataclass
class ApplyTimes:
    plan_ms: list[float] = field(default_factory=list)
    observe_ms: list[float] = field(default_factory=list)
    observe_fresh_ms: list[float] = field(default_factory=list)
    diff_apply_ms: list[float] = field(default_factory=list)
    observe_after_ms: list[float] = field(default_factory=list)  # right after the change's batch
    # where the time goes (the same libnftables context apply uses)
    list_ms: list[float] = field(default_factory=list)  # JSON `list ruleset`
    text_ms: list[float] = field(default_factory=list)  # text `list ruleset` (table comments)
    batch_ms: list[float] = field(default_factory=list)  # the change's nft batch alone
    unbatch_ms: list[float] = field(default_factory=list)  # the batch that takes it back
    # desired state -> the first nft commit of the apply (NFT_MSG_NEWGEN seen): the change in
    # force (a staged change's first batch: firewall_apply._staged)
    effect_ms: list[float] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)  # nft commits of each apply
    elements: int = 0


def one_rule(k: int) -> SecurityGroupRule:
    return rule(90000 + k, BENCH_GROUP, protocol="tcp", port_range_min=7000 + k,
                port_range_max=7000 + k, remote_ip_prefix="192.0.2.0/24")


def apply_latency(bed: Bed, changes: int) -> ApplyTimes:
    """One-rule changes on the 10,000-rule host, alternately adding and
    removing tcp/7000+k from 192.0.2.0/24: plan (the desired state), observe (after a fresh one, as the agent's pass after the last change),
    then diff + apply timed from the desired state to the first nft commit
    (the change in force: a staged change's small first batch) and to the
    last batch's return, then observe again (the agent's next pass: the
    view follows the batches, no listing).  Then the parts of it: the listings that observe and apply
    make, and the change's batch (and the one taking it back) sent alone."""
    assert bed.kernel is not None and bed.policy is not None
    kernel, base = bed.kernel, bed.policy
    out = ApplyTimes(elements=bed.elements)
    commits = Commits(bed.host)
    try:
        _changes(kernel, base, changes, out, commits)
    finally:
        commits.close()
    _batches_alone(bed, kernel, base, changes, out)
    return out


def _changes(kernel: Any, base: Any, changes: int, out: ApplyTimes, commits: Commits) -> None:
    for k in range(changes):
        policy = replace(base, rules=[*base.rules, *([] if k % 2 else [one_rule(k)])])
        gc.collect()
        ta = time.perf_counter()
        kernel.observe(fresh=True)  # the agent's pass after the last change lists once
        out.observe_fresh_ms.append((time.perf_counter() - ta) * 1000)
        t0 = time.perf_counter()
        state = plan_host(policy.view()).state
        t1 = time.perf_counter()
        observed = kernel.observe()
        t2 = time.perf_counter()
        mark = time.monotonic()
        todo = diff(state, observed)
        errors = kernel.apply(todo)
        t3 = time.perf_counter()
        after = kernel.observe()
        t4 = time.perf_counter()
        stamps = commits.since(mark)
        if errors or len(todo) != 1:
            raise BenchError(f"one-rule change: {len(todo)} changes, errors "
                             f"{[e.render()[:200] for e in errors]}")
        if diff(state, after):
            raise BenchError("one-rule change: observe after its batch is not the desired state")
        out.plan_ms.append((t1 - t0) * 1000)
        out.observe_ms.append((t2 - t1) * 1000)
        out.diff_apply_ms.append((t3 - t2) * 1000)
        out.observe_after_ms.append((t4 - t3) * 1000)
        if not stamps:
            raise BenchError("one-rule change: no nft commit seen during its apply")
        out.effect_ms.append((stamps[0] - mark) * 1000)
        out.batches.append(len(stamps))


def _batches_alone(bed: Bed, kernel: Any, base: Any, changes: int, out: ApplyTimes) -> None:
    nft = kernel._nftables()  # noqa: SLF001 - the context apply uses
    old = kernel.observe()[NftRuleset][0]
    for k in range(max(2, changes // 4)):
        new = plan_host(replace(base, rules=[*base.rules, one_rule(k)]).view()).state[NftRuleset][0]
        t0 = time.perf_counter()
        with Nftables(netns=bed.host) as lister:  # as observe lists: a context of its own
            lister.list_ruleset()
        t1 = time.perf_counter()
        nft.table_comments()
        t2 = time.perf_counter()
        nft.json_cmd({"nftables": fw_batch(old, new)})
        t3 = time.perf_counter()
        nft.json_cmd({"nftables": fw_batch(new, old)})
        t4 = time.perf_counter()
        out.list_ms.append((t1 - t0) * 1000)
        out.text_ms.append((t2 - t1) * 1000)
        out.batch_ms.append((t3 - t2) * 1000)
        out.unbatch_ms.append((t4 - t3) * 1000)
    if diff(plan_host(base.view()).state, kernel.observe()):
        raise BenchError(f"{bed.label}: the host did not return to its ruleset")


class Commits:
    """When nft transactions commit in one namespace: a netlink socket
    subscribed to nftables' events, read by a thread that stamps every
    NFT_MSG_NEWGEN as it arrives (libnftables' calls release the GIL)."""

    def __init__(self, ns: str) -> None:
        with entered_netns(ns):
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((0, 0))
        self.sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NFNLGRP_NFTABLES)
        self.stamps: list[float] = []
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while not self.closed:
            try:
                data = self.sock.recv(1 << 20)
            except OSError:
                if self.closed:
                    return
                data = struct.pack("=IHH", 16, NFT_NEWGEN, 0)  # ENOBUFS: something committed
            stamp = time.monotonic()
            if data and _has_newgen(data):
                with self.lock:
                    self.stamps.append(stamp)

    def since(self, mark: float) -> list[float]:
        """The commits after ``mark`` (the reader gets each within microseconds;
        a short grace lets the last one arrive)."""
        time.sleep(0.005)
        with self.lock:
            return [t for t in self.stamps if t >= mark]

    def close(self) -> None:
        self.closed = True
        self.sock.close()


# --------------------------------------------------------------------------- memory
def memory_probe(host_ns: str, rules: int) -> dict[str, float]:
    """In this (fresh) process: RSS after imports; tracemalloc of the plan of
    the ``rules``-rule host and of its observed state; RSS after both."""
    def rss() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")
    gc.collect()
    before = rss()
    view = rules_policy(rules).view()
    tracemalloc.start()
    plan = plan_host(view)
    plan_mb = tracemalloc.get_traced_memory()[0] / 2**20
    kernel = NetlinkKernel(host_ns)
    observed = kernel.observe()
    both, peak = (x / 2**20 for x in tracemalloc.get_traced_memory())
    tracemalloc.stop()
    n = len(observed[NftRuleset][0].elements) if observed[NftRuleset] else 0
    kernel.close()
    gc.collect()
    after = rss()
    del plan, observed
    return {"rss_imports_mb": before, "rss_after_mb": after, "plan_mb": plan_mb,
            "observed_mb": both - plan_mb, "peak_mb": peak,
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "elements": n}


def memory(host_ns: str, rules: int) -> dict[str, float]:
    p = run([sys.executable, __file__, "--memory-probe", host_ns, "--rules", str(rules)],
            timeout=300)
    return {k: float(v) for k, v in json.loads(p.stdout.strip().splitlines()[-1]).items()}


# --------------------------------------------------------------------------- 3 hosts
@dataclass
class RemoteTimes:
    join_ms: list[float] = field(default_factory=list)  # API answer -> element on all 3
    leave_ms: list[float] = field(default_factory=list)
    api_ms: list[float] = field(default_factory=list)  # the PUT itself
    per_host_ms: list[list[float]] = field(default_factory=list)
    members: int = 0
    elements: list[int] = field(default_factory=list)


class InProcessApi:
    """The API over one MemoryStore, called as the HTTP edge calls it."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.api = Api(self.store, ApiConfig(quota_defaults=NO_LIMITS))

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body else b""
        resp = self.api.handle(Request(method, path, [], {}, data))
        if resp.status >= 300:
            raise BenchError(f"API {method} {path}: {resp.status} {resp.body}")
        return resp.body


@dataclass
class GroupModel:
    group: str  # G: admits IPv4 from its members
    other: str  # a group without rules
    ports: dict[str, list[str]]  # host -> its local port ids
    mover: dict[str, Any]  # the port on the first host that joins and leaves G


def group_model(api: InProcessApi, hosts: list[str], local: int, members: int) -> GroupModel:
    """Through the API: a network, groups G and O, ``local`` ports in G on
    each host, the mover (in O) on the first, and ``members`` more members
    of G on 10 registered hosts that have no agent here."""
    call = api.call
    net = call("POST", "/v2.0/networks", {"network": {"name": "fb"}})["network"]
    call("POST", "/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.32.0.0/16",
                                              "ip_version": 4}})
    g = call("POST", "/v2.0/security-groups", {"security_group": {"name": "g"}})["security_group"]
    o = call("POST", "/v2.0/security-groups", {"security_group": {"name": "o"}})["security_group"]
    call("POST", "/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": g["id"], "direction": "ingress", "ethertype": "IPv4",
        "remote_group_id": g["id"]}})

    def port(host: str, group: str) -> dict[str, Any]:
        return dict(call("POST", "/v2.0/ports", {"port": {
            "network_id": net["id"], "binding:host_id": host, "security_groups": [group]}})["port"])

    ports = {h: [port(h, g["id"])["id"] for _ in range(local)] for h in hosts}
    mover = port(hosts[0], o["id"])
    ports[hosts[0]].append(mover["id"])
    elsewhere = [f"rg-else{i}" for i in range(10)]
    for i, h in enumerate(elsewhere):
        Liveness(api.store, h, f"198.18.92.{i + 1}").register()
    for i in range(members):
        port(elsewhere[i % 10], g["id"])
    return GroupModel(g["id"], o["id"], ports, mover)


@contextmanager
def one_nft_call_at_a_time() -> Iterator[None]:
    """Serialize libnftables calls in this process while it stands in for 3
    hosts.  Each agent is a process of its own in production, using its one
    context from one thread; here 3 agents and 3 watchers share a process,
    and a run with their contexts called concurrently once got a corrupted
    JSON listing (``Invalid control character``; the agent's pass failed and
    was retried a second later)."""
    plain = nft.Nftables.cmd
    lock = threading.Lock()

    def cmd(self: Any, text: str) -> str:
        with lock:
            return plain(self, text)

    nft.Nftables.cmd = cmd  # type: ignore[method-assign]
    try:
        yield
    finally:
        nft.Nftables.cmd = plain  # type: ignore[method-assign]


def remote_group(env: Env, sink: str, changes: int, local: int, members: int,
                 tag: str) -> RemoteTimes:
    """Three host namespaces, each driven by its own Reconciler in an AgentLoop
    thread over one MemoryStore; the API in process.  A port on the first
    host joins (and leaves) group G, whose rule admits IPv4 from G's
    members: every host with a port in G adds (removes) ``<tag> . <its
    address>`` in ``in4_any``."""
    api = InProcessApi()
    hosts = [f"rg{i}" for i in range(1, 4)]
    nss = {h: env.netns(f"{h}-{tag}-h") for h in hosts}
    loops: list[AgentLoop] = []
    threads: list[threading.Thread] = []
    watchers: list[Generations] = []
    out = RemoteTimes(members=members)
    try:
        for i, h in enumerate(hosts):
            run(["ip", "-n", nss[h], "addr", "add", f"198.18.91.{i + 1}/32", "dev", "lo"])
            run(in_ns(nss[h], ["sysctl", "-q", "-w", *(f"{k}=0" for k in SYSCTLS)]))
            Liveness(api.store, h, f"198.18.91.{i + 1}").register()
        model = group_model(api, hosts, local, members)
        for j, h in enumerate(hosts):
            add_taps(env, nss[h], sink, [Port(id=p) for p in model.ports[h]], f"r{tag}{j}-")
            reconciler = Reconciler(h, f"198.18.91.{j + 1}", api.store,
                                    None, ModelView())  # type: ignore[arg-type]
            loops.append(AgentLoop(api.store, reconciler, resync_interval=3600))
            threads.append(threading.Thread(target=agent_thread, args=(nss[h], loops[-1]),
                                            daemon=True))
            threads[-1].start()
        address = model.mover["fixed_ips"][0]["ip_address"]
        watchers += [Generations(nss[h], Nftables(netns=nss[h]), address) for h in hosts]
        wait_active(api, [p for h in hosts for p in model.ports[h]])
        for k in range(changes):
            join = k % 2 == 0
            t0 = time.monotonic()
            api.call("PUT", f"/v2.0/ports/{model.mover['id']}",
                     {"port": {"security_groups": [model.group if join else model.other]}})
            t1 = time.monotonic()
            per_host = [(w.first(join, t1, t1 + 60) - t1) * 1000 for w in watchers]
            out.api_ms.append((t1 - t0) * 1000)
            out.per_host_ms.append(per_host)
            (out.join_ms if join else out.leave_ms).append(max(per_host))
        out.elements = [w.count() for w in watchers]
    finally:
        for w in watchers:
            w.close()
        for loop in loops:
            loop.stopping.set()
        for t in threads:
            t.join(10)
        api.store.close()
    return out


def wait_active(api: InProcessApi, ports: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while any(api.call("GET", f"/v2.0/ports/{p}")["port"]["status"] != "ACTIVE" for p in ports):
        if time.monotonic() > deadline:
            raise BenchError(f"the 3 hosts' ports did not become ACTIVE within {timeout:.0f} s")
        time.sleep(0.05)


class Generations:
    """When the element with ``address`` in ``in4_any`` appears or goes in one
    host's kernel: a netlink socket in the namespace subscribed to nftables'
    events (what ``nft monitor`` reads; its text output stops after the first
    event of these sets on libnftables 1.0.6) wakes at every committed batch
    (NFT_MSG_NEWGEN); at each, one listing of the set says whether the
    element is there.  No polling: the reader sleeps in recv()."""

    def __init__(self, ns: str, nft: Any, address: str) -> None:
        self.nft, self.address = nft, address
        with entered_netns(ns):
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((0, 0))
        self.sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NFNLGRP_NFTABLES)
        self.seen: list[tuple[float, bool]] = [(time.monotonic(), self.present())]
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def present(self) -> bool:
        cmd = {"list": {"set": {"family": "inet", "table": FW_TABLE, "name": "in4_any"}}}
        try:
            data = self.nft.json_cmd({"nftables": [cmd]})
        except Exception:  # noqa: BLE001 - the set is not made yet
            return False
        return f'"{self.address}"' in json.dumps(data)

    def _read(self) -> None:
        while not self.closed:
            try:
                data = self.sock.recv(1 << 20)
            except OSError:  # ENOBUFS: events were lost, so something was committed
                data = struct.pack("=IHH", 16, NFT_NEWGEN, 0)
            if not data or not _has_newgen(data):
                continue
            stamp = time.monotonic()
            with self.cond:
                if self.closed:
                    return
                self.seen.append((stamp, self.present()))
                self.cond.notify_all()

    def first(self, want: bool, since: float, deadline: float) -> float:
        """The first commit after ``since`` that left the element as ``want``."""
        with self.cond:
            while True:
                for stamp, state in self.seen:
                    if stamp >= since and state == want:
                        return stamp
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"membership change not in the kernel after "
                                     f"{deadline - since:.0f} s")
                self.cond.wait(left)

    def count(self) -> int:
        with self.cond:  # one context, one thread at a time
            return count_elements(self.nft)

    def close(self) -> None:
        with self.cond:  # never while the reader lists the set
            self.closed = True
            self.nft.close()
        self.sock.close()


def _has_newgen(data: bytes) -> bool:
    """Whether a batch of netlink messages holds an NFT_MSG_NEWGEN."""
    at = 0
    while at + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, at)
        if kind == NFT_NEWGEN:
            return True
        at += max(16, (length + 3) & ~3)
    return False


def agent_thread(ns: str, loop: Any) -> None:
    """An agent's loop in its host's namespace, as ``overcast agent`` runs
    inside it: this thread enters the namespace for its whole life and makes
    its kernel there (pyroute2 0.9's IPRoute used from another thread talks
    to that thread's namespace, measured: a NetlinkKernel made in one thread
    and used from another writes links into the wrong namespace)."""
    with entered_netns(ns):
        kernel = NetlinkKernel()
        try:
            loop.reconciler.kernel = kernel
            loop.run()
        finally:
            kernel.close()


def count_elements(nft: Any) -> int:
    """Elements of the sets and maps of Overcast's tables, as the kernel lists them."""
    items = nft.list_ruleset().get("nftables", [])
    return sum(len(body.get("elem", [])) for item in items for kind in ("set", "map")
               if (body := item.get(kind)) is not None and body.get("table") == FW_TABLE)


# --------------------------------------------------------------------------- report
def med(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def best(xs: Sequence[float]) -> float:
    return max(xs) if xs else float("nan")


def share(xs: list[float], ref: list[float] | None) -> str:
    """``xs`` as a share of ``ref``: medians / best runs."""
    if ref is None or xs is ref:
        return ""
    return f"{100 * med(xs) / med(ref):.1f}% /{100 * best(xs) / best(ref):>6.1f}%"


def verdict(xs: list[float], ref: list[float], goal: float) -> str:
    """MET on the medians; on a shared machine the best runs are the least
    disturbed ones, so say when only they meet it."""
    if med(xs) / med(ref) >= goal / 100:
        return "MET"
    return "MET on best runs only" if best(xs) / best(ref) >= goal / 100 else "NOT MET"


def report_traffic(beds: list[Bed], args: argparse.Namespace) -> list[str]:
    by = {b.key: b for b in beds}
    nofw = by["nofw"].gbps if "nofw" in by else None
    ten = by["r10"].conns if "r10" in by else None
    lines = [f"firewall: one host, VM to VM through its bridge; iperf3 {args.seconds:g}s single "
             f"stream, conn_rate {args.conn_seconds:g}s; median and best of {args.rounds} "
             f"interleaved rounds; cpus={os.cpu_count()}, kernel {os.uname().release}"]
    head = (f"{'configuration':<40}{'elements':>9}{'Gbit/s med':>11}{'best':>6}"
            f"{'% no fw med/best':>18}{'conn/s med':>11}{'best':>7}{'% 10 rules med/best':>21}")
    lines += [head, "-" * len(head)]
    for b in beds:
        lines.append(f"{b.label:<40}{b.elements:>9}{med(b.gbps):>11.2f}{best(b.gbps):>6.2f}"
                     f"{share(b.gbps, nofw):>18}{med(b.conns):>11.0f}"
                     f"{best(b.conns):>7.0f}{share(b.conns, ten):>21}")
        lines.append(f"{'':<6}runs: Gbit/s " + ", ".join(f"{x:.2f}" for x in b.gbps)
                     + "; conn/s " + ", ".join(f"{x:.0f}" for x in b.conns))
    lines.append("")
    if "hand" in by:
        for key in ("htag", "haddr"):
            if key in by:
                lines.append(f"diagnosis: {by[key].label}: conn/s "
                             f"{share(by[key].conns, by['hand'].conns)} of (b) (med/best)")
    return lines


def report_goals(beds: list[Bed], lat: ApplyTimes | None) -> list[str]:
    by = {b.key: b for b in beds}
    goals: list[tuple[str, str, str]] = []
    for key in ("r10k", "r10k1", "rg10k"):  # each shape of 10,000 elements
        if "r10" in by and key in by:
            big, ten = by[key].conns, by["r10"].conns
            goals.append((f"new conn/s, {by[key].label} >= 95% of 10 rules", share(big, ten),
                          verdict(big, ten, GOAL_CONN)))
    for key in ("r10", "r10k", "rg10k", "p1k"):
        if "nofw" in by and key in by:
            xs, ref = by[key].gbps, by["nofw"].gbps
            goals.append((f"throughput, {by[key].label} >= 95% of no firewall", share(xs, ref),
                          verdict(xs, ref, GOAL_TPUT)))
    if lat is not None:
        ef, da = lat.effect_ms, lat.diff_apply_ms
        goals.append((f"one-rule change on a {lat.elements}-element host in force <= 50 ms",
                      f"median {med(ef):.0f} ms, max {best(ef):.0f} ms",
                      "MET" if best(ef) <= GOAL_APPLY_MS else "NOT MET"))
        goals.append((f"  (its whole apply, both batches, for comparison; staged {sum(b == 2 for b in lat.batches)}"
                      f" of {len(lat.batches)})", f"median {med(da):.0f} ms, max {best(da):.0f} ms", ""))
    return [f"goal: {what:<68} {value:<26} {ok}" for what, value, ok in goals]


def report_changes(lat: ApplyTimes, small: ApplyTimes | None) -> list[str]:
    lines = ["", f"one-rule change, {len(lat.diff_apply_ms)} changes (add / remove alternately), "
                 f"ms median / max, on the host with {lat.elements} elements"
                 + (f" (in brackets: with {small.elements})" if small else "") + ":"]
    for label, of in (("plan_host (the new desired state)", lambda t: t.plan_ms),
                      ("observe (the agent reads the kernel; nft generation unchanged)",
                       lambda t: t.observe_ms),
                      ("observe, fresh (a listing: after any nft transaction)",
                       lambda t: t.observe_fresh_ms),
                      ("observe after the change's batch (the next pass; no listing)",
                       lambda t: t.observe_after_ms),
                      ("diff + apply until in force (desired -> its first nft commit)",
                       lambda t: t.effect_ms),
                      ("  adding the rule", lambda t: t.effect_ms[0::2]),
                      ("  removing the rule (its revoke batch)", lambda t: t.effect_ms[1::2]),
                      ("diff + apply (desired state -> the last nft batch returned)",
                       lambda t: t.diff_apply_ms),
                      ("  adding the rule", lambda t: t.diff_apply_ms[0::2]),
                      ("  removing the rule", lambda t: t.diff_apply_ms[1::2]),
                      ("observe + diff + apply (a pass without the plan)",
                       lambda t: [a + b for a, b in zip(t.observe_ms, t.diff_apply_ms,
                                                        strict=True)]),
                      ("  of which: one JSON `list ruleset` (observe; its own context)",
                       lambda t: t.list_ms),
                      ("  of which: one terse text `list ruleset` (tables, both)",
                       lambda t: t.text_ms),
                      ("  of which: the change's nft batch alone (adds the rule)",
                       lambda t: t.batch_ms),
                      ("  of which: the nft batch removing the rule alone",
                       lambda t: t.unbatch_ms)):
        xs = of(lat)
        line = f"  {label:<68}{med(xs):>8.1f} /{best(xs):>7.1f}"
        if small is not None:
            line += f"   ({med(of(small)):.1f} / {best(of(small)):.1f})"
        lines.append(line)
    return lines


def report_memory(mem: dict[str, float], rules: int) -> list[str]:
    return ["", f"agent memory for {rules} rules ({mem['elements']:.0f} elements), a fresh "
                f"process: tracemalloc plan {mem['plan_mb']:.1f} MiB + observed state "
                f"{mem['observed_mb']:.1f} MiB (peak while making them {mem['peak_mb']:.1f} "
                f"MiB); RSS {mem['rss_imports_mb']:.0f} MiB after imports -> "
                f"{mem['rss_after_mb']:.0f} MiB with both (max RSS {mem['maxrss_mb']:.0f} MiB)"]


def report_remote(one: RemoteTimes) -> list[str]:
    per = [x for row in one.per_host_ms for x in row]
    return ["", f"remote-group membership change across 3 hosts (3 Reconciler threads, one "
                f"MemoryStore, in-process API), group of {15 + one.members} members ("
                f"{one.members} on 10 other hosts, without an agent here); elements per host "
                f"{one.elements}; ms from the PUT's answer to the element in all 3 kernels:",
            f"  join  median {med(one.join_ms):.1f}, max {best(one.join_ms):.1f} "
            f"(n={len(one.join_ms)})",
            f"  leave median {med(one.leave_ms):.1f}, max {best(one.leave_ms):.1f} "
            f"(n={len(one.leave_ms)})",
            f"  any one host median {med(per):.1f}; the PUT itself median "
            f"{med(one.api_ms):.1f} ms"]


def revision() -> str:
    """The commit measured, and whether src/ differed from it (other work
    in the same checkout)."""
    head = run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], check=False).stdout
    dirty = run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"], check=False).stdout
    return f"{head.strip() or '?'}{' with uncommitted changes in src/' if dirty.strip() else ''}"


def report(out: Results, args: argparse.Namespace) -> list[str]:
    lines = [f"code: {out.revision}"]
    lines += report_traffic(out.beds, args) if out.beds else []
    lines += report_goals(out.beds, out.lat)
    if out.lat is not None:
        lines += report_changes(out.lat, out.lat_small)
    if out.mem is not None:
        lines += report_memory(out.mem, args.rules_max)
    for one in out.rg:
        lines += report_remote(one)
    return lines + out.keys


# --------------------------------------------------------------------------- main
@contextmanager
def signals_raise() -> Iterator[None]:
    """SIGTERM/SIGHUP end the run like Ctrl-C does: through ``finally``."""
    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def configurations(args: argparse.Namespace) -> list[Config]:
    nofw = replace(rules_policy(2), firewall=False)
    n = args.rules_max
    out = [
        Config("nofw", "(a) no firewall", lambda: nofw),
        Config("hand", "(b) hand-written nft, same policy", lambda: nofw, "plain"),
        Config("r10", "(c) Overcast, 10 rules", lambda: rules_policy(10)),
        Config("r1k", "(c) Overcast, 1,000 rules", lambda: rules_policy(1000)),
        Config("r10k", f"(c) Overcast, {n:,} rules", lambda: rules_policy(n)),
        Config("r10k1", f"(c) Overcast, {n:,} rules, one remote",
               lambda: rules_policy(n, one_remote_filler)),
        Config("rg10k", f"(d) Overcast, {args.members:,} remote members",
               lambda: remote_group_policy(args.members)),
        Config("p1k", f"(e) Overcast, {args.ports:,} ports, 10 rules",
               lambda: many_ports_policy(args.ports)),
    ]
    if not args.no_diagnosis:
        out += [Config("htag", f"(x) hand, {n:,}-elem set, tag first", lambda: nofw, "tag", n),
                Config("haddr", f"(x) hand, {n:,}-elem set, addr first", lambda: nofw, "addr", n)]
    return out


def options(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2 rounds of 1 s tests, 4 changes")
    p.add_argument("--rounds", type=int, default=8, help="interleaved rounds (median, best)")
    p.add_argument("--seconds", type=float, default=1.5, help="iperf3 duration")
    p.add_argument("--conn-seconds", type=float, default=1.5, help="conn_rate duration")
    p.add_argument("--changes", type=int, default=10, help="one-rule changes timed")
    p.add_argument("--rg-changes", type=int, default=20, help="membership changes timed")
    p.add_argument("--rules-max", type=int, default=10000)
    p.add_argument("--members", type=int, default=10000)
    p.add_argument("--ports", type=int, default=1000)
    p.add_argument("--rg-members", default="0,1000",
                   help="extra members of the 3-host test's group (on 10 other hosts without "
                        "an agent here), one test per comma-separated size (--quick: 0)")
    p.add_argument("--only", choices=["all", "hosts", "remote", "keys"], default="all",
                   help="hosts: the single-host configurations and changes; remote: the "
                        "3-host membership change only; keys: key orders of a hand-written "
                        "set compared (not part of all)")
    p.add_argument("--no-diagnosis", action="store_true",
                   help="skip the (x) rows: hand-written 10,000-element sets in both key orders")
    p.add_argument("--memory-probe", metavar="NS", help=argparse.SUPPRESS)
    p.add_argument("--rules", type=int, default=10000, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds, args.conn_seconds = 2, 1.0, 1.0
        args.changes, args.rg_changes, args.rg_members = 4, 6, "0"
    return args


@dataclass
class Results:
    beds: list[Bed] = field(default_factory=list)
    lat: ApplyTimes | None = None
    lat_small: ApplyTimes | None = None  # the same on the 10-rule host, for scale
    mem: dict[str, float] | None = None
    rg: list[RemoteTimes] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # --only keys: the report's lines
    revision: str = ""


def one_host(env: Env, sink: str, tool: Path, args: argparse.Namespace, out: Results) -> None:
    """Every configuration's host, the traffic through each (interleaved
    rounds), then the changes and the memory of the 10,000-rule host."""
    for cfg in configurations(args):
        print(f"building {cfg.label} ...", flush=True)
        out.beds.append(build(env, sink, cfg))
        print(f"  {out.beds[-1].elements} elements, {out.beds[-1].build_s:.1f} s", flush=True)
    for b in out.beds:  # first contact (ARP; the policy admits no ping) before timing
        conn_rate(env, tool, b, 0.3, strict=False)
    for r in range(args.rounds):
        for b in out.beds if r % 2 == 0 else list(reversed(out.beds)):
            print(f"  [{r + 1}/{args.rounds}] {b.label} ...", flush=True)
            b.gbps.append(iperf(env, b, args.seconds))
            b.conns.append(conn_rate(env, tool, b, args.conn_seconds))
    big = next(b for b in out.beds if b.key == "r10k")
    print(f"one-rule changes on the {big.elements}-element host ...", flush=True)
    out.lat = apply_latency(big, args.changes)
    out.lat_small = apply_latency(next(b for b in out.beds if b.key == "r10"), args.changes)
    print("agent memory (a fresh process) ...", flush=True)
    out.mem = memory(big.host, args.rules_max)


def three_hosts(env: Env, sink: str, args: argparse.Namespace, out: Results) -> None:
    print("remote-group membership across 3 hosts ...", flush=True)
    for i, size in enumerate(int(x) for x in args.rg_members.split(",")):
        print(f"  group with {size} extra members ...", flush=True)
        few = args.rg_changes if size < 5000 else min(args.rg_changes, 6)
        with one_nft_call_at_a_time():
            out.rg.append(remote_group(env, sink, few, 5, size, str(i)))


def main(argv: list[str] | None = None) -> int:
    args = options(argv)
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe, args.rules)))
        return 0
    if os.geteuid() != 0:
        print("firewall.py needs root (network namespaces)", file=sys.stderr)
        return 2
    for need in ("ip", "nft", "iperf3", "ss", "cc"):
        if shutil.which(need) is None:
            print(f"firewall.py needs {need} (scripts/setup installs it)", file=sys.stderr)
            return 2
    env = Env()
    workdir = Path(tempfile.mkdtemp(prefix="oc-fb-"))
    out = Results(revision=revision())
    started = time.monotonic()
    try:
        with signals_raise():
            tool = compile_conn_rate(workdir)
            sink = env.netns("sink")
            if args.only in ("all", "hosts"):
                one_host(env, sink, tool, args, out)
            if args.only in ("all", "remote"):
                three_hosts(env, sink, args, out)
            if args.only == "keys":
                out.keys = key_orders(env, sink, tool, args)
    except KeyboardInterrupt:
        print("interrupted: cleaning up", file=sys.stderr)
        return 130
    except BenchError as exc:
        failed = str(exc)
    else:
        failed = ""
    finally:
        env.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print("\n".join(report(out, args)))
    print(f"(whole run {time.monotonic() - started:.0f} s)")
    if failed:
        print(f"FAILED, the figures above are what was measured before: {failed}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
