"""QoS bandwidth limits: accuracy, cost and change latency, beside hand-written tc (root).

One run measures, on this machine's kernel, VM to VM through one host's bridge
(MTU 1500; VM ``a`` sends, VM ``b`` receives):

  accuracy   limits of 10 Mbit/s, 100 Mbit/s and 1 Gbit/s, in both of Neutron's
             directions: *egress* (from the VM: the limit on ``a``'s port, shaped on
             its ifb) and *ingress* (to the VM: the limit on ``b``'s port, shaped on
             its tap), each as
               (a) unshaped: the same topology, no tc at all,
               (b) hand-written tc of the same rate and burst (``tc`` commands: an htb
                   root qdisc with one class on the tap; for egress, an ifb, the tap's
                   ingress qdisc and a u32 match-all filter with a mirred redirect to
                   it, and the htb on the ifb),
               (c) Overcast: a QoS policy with one bandwidth limit rule on the port,
                   realized by plan_host + NetlinkKernel.
             (b) takes the burst of (c)'s Shaper record (Neutron's default 80% of
             max_kbps kilobits when max_burst_kbps is 0).
  cost       Overcast's path with no policy (after one was removed: no tc object of
             ours may be left, checked) and with 10 Gbit/s limits in both directions
             on both ports (shaping present; this machine's veth path can exceed
             10 Gbit/s, so also 100 Gbit/s, surely above line rate), beside unshaped.
  latency    a bandwidth limit rule's max_kbps changed through the in-process API,
             an agent (Reconciler in an AgentLoop thread over the same in-memory
             store) realizing it: from the API's answer until the htb class of every
             device the rule shapes has the new rate, as netlink reads it (polled
             every millisecond).  "In effect" means the class's rate changed.

Metric: iperf3, TCP, single stream, ``-O 1`` (the first second, slow start and the
burst, omitted), goodput from the JSON's ``end.sum_received``, and the frame rate:
goodput x (MTU + 14) / (MTU - 52), a full segment's Ethernet frame over its payload
(TCP timestamps on), which is what the shaper counts.  Every configuration has its
host namespace, built as the agent builds it (``plan_host(HostView(...))``, ``diff``
against ``NetlinkKernel.observe()``, ``NetlinkKernel.apply``); (b) and (c) are set
to each rate and direction just before their test.  The configurations alternate
round by round; the report gives medians.  Where the traffic must cross an ifb
(egress limits, both sides, and the 10/100 Gbit/s ones), its transmitted bytes
must have grown by at least the measured goodput's: else the redirect failed.

Every namespace is named ``oc-qb-<pid>-...`` and deleted at the end (also on Ctrl-C
or an error); every process is stopped by PID.

    sudo .venv/bin/python bench/qos.py            # 3 rounds of 5 s tests (~5 min)
    sudo .venv/bin/python bench/qos.py --quick    # 1 round of 2 s tests (~1 min)
    sudo .venv/bin/python bench/qos.py --only latency --changes 50
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from firewall import (  # noqa: E402
    SYSCTLS,
    InProcessApi,
    converge,
    signals_raise,
    wait_active,
    wait_listening,
)
from shell import BenchError, Env, in_ns, run  # noqa: E402

from overcast.agent import AgentLoop, Liveness, ModelView, Reconciler  # noqa: E402
from overcast.linux.devices import entered_netns  # noqa: E402
from overcast.linux.netlink import NetlinkKernel  # noqa: E402
from overcast.model.types import (  # noqa: E402
    BandwidthLimitRule,
    FixedIP,
    Network,
    Port,
    QosPolicy,
)
from overcast.plan import HostView, plan_host  # noqa: E402
from overcast.plan.names import QOS_MAJOR, qos_ifb_name, tap_name  # noqa: E402
from overcast.plan.raw import TcClass, TcQdisc  # noqa: E402
from overcast.plan.state import Change  # noqa: E402
from overcast.plan.subsystems.qos import CLASS_HANDLE, QosIfb, Redirect, Shaper  # noqa: E402

PREFIX = f"oc-qb-{os.getpid()}-"
MTU = 1500
FRAME = (MTU + 14) / (MTU - 52)  # frame bytes per payload byte of a full segment
HOST, UNDERLAY = "qb1", "198.18.93.1"
NET = "9b9b9b9b-0000-4000-8000-000000000001"
CLIENT_IP, SERVER_IP = "10.93.0.1", "10.93.0.2"
RATES = (10_000, 100_000, 1_000_000)  # max_kbps
UNLIMITED = (10_000_000, 100_000_000)  # 10 Gbit/s (the issue's) and 100 Gbit/s: line rate?
DIRECTIONS = ("egress", "ingress")
HAND_IFB = "qbifb0"
GOAL_PCT = 5.0
PARITY = (0.97, 1.03)
GOAL_CHANGE_MS = 300.0
IPERF_PORTS = (5201, 5300)


# --------------------------------------------------------------------------- the model
def port(n: int, ip: str) -> Port:
    return Port(id=f"{n:08x}-9b00-4000-8000-{n:012x}", network_id=NET,
                mac_address=f"fa:16:3e:9b:00:{n:02x}", binding_host_id=HOST,
                fixed_ips=(FixedIP("qb-subnet", ip),))


PORTS = (port(1, CLIENT_IP), port(2, SERVER_IP))
TAPS = tuple(tap_name(p.id) for p in PORTS)


def view(limits: Mapping[int, Sequence[tuple[str, int]]] | None = None) -> HostView:
    """The host of the two VMs; ``limits``: port index -> its own policy's
    bandwidth limits (direction, max_kbps); a port without an entry has no policy."""
    ports, policies, rules = [], [], []
    for i, p in enumerate(PORTS):
        if i not in (limits or {}):
            ports.append(p)
            continue
        pol = f"9b000000-0000-4000-8000-00000000000{i}"
        ports.append(replace(p, qos_policy_id=pol))
        policies.append(QosPolicy(id=pol))
        rules += [BandwidthLimitRule(id=f"9b00000{j}-{pol[9:]}", policy_id=pol, max_kbps=k,
                                     direction=d) for j, (d, k) in enumerate((limits or {})[i])]
    return HostView(HOST, UNDERLAY, {HOST: UNDERLAY}, [Network(id=NET, network_type="local",
                                                               mtu=MTU)],
                    ports, firewall=False, qos_policies=policies, qos_rules=rules)


def limited(direction: str, kbps: int) -> HostView:
    """One limit on the port it concerns: egress on the sender's, ingress on the receiver's."""
    return view({0 if direction == "egress" else 1: [(direction, kbps)]})


def unlimited(kbps: int) -> HostView:
    both = [(d, kbps) for d in DIRECTIONS]
    return view({0: both, 1: both})


def shaper_of(v: HostView) -> Shaper:
    """The one Shaper record plan_host makes of ``v`` (its rate and burst are the hand's)."""
    shapers = plan_host(v).state[Shaper]
    if len(shapers) != 1:
        raise BenchError(f"expected one shaper, the plan has {[s.render() for s in shapers]}")
    return shapers[0]


# --------------------------------------------------------------------------- hosts
@dataclass
class Bed:
    """One configuration's host namespace and kernel, its two VMs."""

    key: str
    host: str
    client: str
    server: str
    kernel: NetlinkKernel


def add_vm(env: Env, host_ns: str, role: str, mac: str, ip: str, tap: str) -> str:
    ns = env.netns(role)
    run(["ip", "-n", host_ns, "link", "add", tap, "mtu", str(MTU), "type", "veth", "peer",
         "name", "eth0", "netns", ns])
    run(["ip", "-n", ns, "link", "set", "eth0", "address", mac, "mtu", str(MTU), "up"])
    run(["ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0"])
    return ns


def build(env: Env, key: str, kernels: list[NetlinkKernel]) -> Bed:
    """A host with Overcast's bridge and the two VMs' taps attached, no QoS."""
    host = env.netns(f"{key}-h")
    run(in_ns(host, ["sysctl", "-q", "-w", *(f"{k}=0" for k in SYSCTLS)]), check=False)
    vms = [add_vm(env, host, f"{key}-{'ab'[i]}", p.mac_address, p.fixed_ips[0].ip_address,
                  TAPS[i]) for i, p in enumerate(PORTS)]
    kernels.append(NetlinkKernel(host))
    converge(kernels[-1], view())
    return Bed(key, host, vms[0], vms[1], kernels[-1])


def tc(ns: str, *args: str, check: bool = True) -> None:
    run(["tc", "-n", ns, *args], check=check)


def hand_clear(bed: Bed) -> None:
    for tap in TAPS:
        tc(bed.host, "qdisc", "del", "dev", tap, "root", check=False)
        tc(bed.host, "qdisc", "del", "dev", tap, "ingress", check=False)
    run(["ip", "-n", bed.host, "link", "del", HAND_IFB], check=False)


def hand_set(bed: Bed, direction: str, rate: int, burst: int) -> None:
    """(b): ``rate`` bytes/s, ``burst`` bytes, as an operator writes it with tc."""
    hand_clear(bed)
    dev = TAPS[1]
    if direction == "egress":
        dev = HAND_IFB
        run(["ip", "-n", bed.host, "link", "add", HAND_IFB, "mtu", str(MTU), "type", "ifb"])
        run(["ip", "-n", bed.host, "link", "set", HAND_IFB, "up"])
        tc(bed.host, "qdisc", "add", "dev", TAPS[0], "handle", "ffff:", "ingress")
        tc(bed.host, "filter", "add", "dev", TAPS[0], "parent", "ffff:", "protocol", "all",
           "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev",
           HAND_IFB)
    tc(bed.host, "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "1")
    r, b = f"{rate * 8}bit", str(burst)
    tc(bed.host, "class", "add", "dev", dev, "parent", "1:", "classid", "1:1", "htb", "rate", r,
       "ceil", r, "burst", b, "cburst", b)


def nothing_of_ours(bed: Bed) -> str:
    """After the policy's removal: no QoS record observed, no ifb, no htb qdisc
    of ours and no ingress qdisc on the taps; what the taps have instead."""
    state = bed.kernel.observe()
    left = ([r.render() for r in state[QosIfb]] + [r.render() for r in state[Shaper]]
            + [r.render() for r in state[Redirect]])
    rows = bed.kernel.tc_rows(TAPS)
    ours = [f"{q.dev} {q.kind} {q.handle >> 16:x}:" for q in rows if isinstance(q, TcQdisc)
            and (q.handle >> 16 == QOS_MAJOR or q.kind == "ingress")]
    ifbs = json.loads(run(["ip", "-n", bed.host, "-j", "link", "show", "type", "ifb"]).stdout)
    if left or ours or ifbs:
        raise BenchError(f"no policy, yet left: {left} {ours} {[i['ifname'] for i in ifbs]}")
    links = json.loads(run(["ip", "-n", bed.host, "-j", "link", "show"]).stdout)
    return ", ".join(f"{ln['ifname']} {ln.get('qdisc', '?')}" for ln in links
                     if ln["ifname"] in TAPS)


# --------------------------------------------------------------------------- traffic
_port = [IPERF_PORTS[0]]


def iperf(env: Env, bed: Bed, seconds: float) -> float:
    """Goodput in bit/s of one iperf3 TCP stream a -> b, the first second omitted."""
    _port[0] = _port[0] + 1 if _port[0] < IPERF_PORTS[1] else IPERF_PORTS[0]
    p = str(_port[0])
    srv = env.start(in_ns(bed.server, ["iperf3", "-s", "-1", "-B", SERVER_IP, "-p", p]))
    try:
        wait_listening(bed.server, int(p), time.monotonic() + 10)
        out = run(in_ns(bed.client, ["iperf3", "-c", SERVER_IP, "-p", p, "-t", f"{seconds:g}",
                                     "-O", "1", "-J"]), check=False, timeout=seconds + 30)
        try:
            data = json.loads(out.stdout)
        except ValueError:
            raise BenchError(f"iperf3 {bed.key}: {out.stderr[-300:]}") from None
        if "error" in data:
            raise BenchError(f"iperf3 {bed.key}: {data['error']}")
        return float(data["end"]["sum_received"]["bits_per_second"])
    finally:
        env.stop(srv)


@dataclass
class Runs:
    """Goodput (bit/s) of every configuration, by key, over the rounds."""

    bps: dict[str, list[float]] = field(default_factory=dict)
    bursts: dict[int, int] = field(default_factory=dict)  # max_kbps -> burst bytes
    tap_qdiscs: str = ""  # what the taps have with no policy

    def add(self, key: str, value: float) -> None:
        self.bps.setdefault(key, []).append(value)

    def med(self, key: str) -> float:
        return statistics.median(self.bps[key]) if self.bps.get(key) else float("nan")


def tests() -> list[tuple[str, str, int]]:
    """(side, direction, max_kbps) of one round: unshaped first, the cost last."""
    out = [("unshaped", "", 0)]
    out += [(side, d, k) for k in RATES for d in DIRECTIONS for side in ("hand", "ov")]
    return [*out, ("nopolicy", "", 0), *(("unlimited", "", k) for k in UNLIMITED)]


def key(side: str, direction: str, kbps: int) -> str:
    return " ".join([side, *([direction] if direction else []), *([str(kbps)] if kbps else [])])


def tx_bytes(ns: str, dev: str) -> int:
    link = json.loads(run(["ip", "-n", ns, "-j", "-s", "link", "show", "dev", dev]).stdout)
    return int(link[0]["stats64"]["tx"]["bytes"])


def via(bed: Bed, side: str, direction: str) -> str:
    """The ifb the test's traffic must cross ("" if none): the sender's."""
    if side == "hand" and direction == "egress":
        return HAND_IFB
    if side == "unlimited" or (side == "ov" and direction == "egress"):
        return qos_ifb_name(PORTS[0].id)
    return ""


def configure(beds: Mapping[str, Bed], runs: Runs, side: str, direction: str, kbps: int) -> Bed:
    """The bed of ``side``, set to the test's limit."""
    if side == "unshaped":
        return beds["u"]
    if side == "hand":
        shaper = shaper_of(limited(direction, kbps))
        hand_set(beds["h"], direction, shaper.rate, shaper.burst)
        return beds["h"]
    bed = beds["o"]
    if side == "nopolicy":  # every kind of record made, then the policies removed
        converge(bed.kernel, unlimited(UNLIMITED[0]))
        converge(bed.kernel, view())
        runs.tap_qdiscs = nothing_of_ours(bed)
    elif side == "unlimited":
        converge(bed.kernel, unlimited(kbps))
    else:
        converge(bed.kernel, limited(direction, kbps))
        runs.bursts[kbps] = shaper_of(limited(direction, kbps)).burst
    return bed


def one_test(env: Env, beds: Mapping[str, Bed], runs: Runs, test: tuple[str, str, int],
             seconds: float) -> None:
    """Set the configuration up, then one iperf3 test; a redirect that let the
    traffic bypass its ifb is an error."""
    side, direction, kbps = test
    bed = configure(beds, runs, side, direction, kbps)
    ifb = via(bed, side, direction)
    before = tx_bytes(bed.host, ifb) if ifb else 0
    bps = iperf(env, bed, seconds)
    if ifb and tx_bytes(bed.host, ifb) - before < bps * seconds / 8:
        raise BenchError(f"{key(*test)}: the traffic did not cross {ifb} (redirect not working)")
    runs.add(key(side, direction, kbps), bps)


def traffic(env: Env, beds: Mapping[str, Bed], args: argparse.Namespace, runs: Runs) -> None:
    every = tests()
    for r in range(args.rounds):
        for i, t in enumerate(every if r % 2 == 0 else list(reversed(every))):
            print(f"  [{r + 1}/{args.rounds}] {i + 1}/{len(every)} {key(*t)} ...", flush=True)
            one_test(env, beds, runs, t, args.seconds)


# --------------------------------------------------------------------------- change latency
class Recording(NetlinkKernel):
    """The agent's kernel, noting every change it applies: whether a rate
    change replaced the class in place or made anything anew."""

    def __init__(self, netns: str | None = None) -> None:
        super().__init__(netns)
        self.applied: list[tuple[float, str]] = []

    def apply(self, changes: Sequence[Change]) -> Any:
        stamp = time.monotonic()
        self.applied += [(stamp, c.render()) for c in changes]
        return super().apply(changes)


@dataclass
class Latency:
    ms: dict[str, list[float]] = field(default_factory=lambda: {d: [] for d in DIRECTIONS})
    from_call: list[float] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # what the agent applied, each change


def agent_thread(ns: str, loop: AgentLoop, made: list[Recording]) -> None:
    """The agent's loop in the host's namespace, its kernel made there (as
    bench/firewall.py's agent_thread, with the recording kernel)."""
    with entered_netns(ns):
        kernel = Recording()
        made.append(kernel)
        try:
            loop.reconciler.kernel = kernel
            loop.run()
        finally:
            kernel.close()


def class_rates(poller: NetlinkKernel, devs: Sequence[str]) -> dict[str, int]:
    return {c.dev: c.rate for c in poller.tc_rows(devs)
            if isinstance(c, TcClass) and c.handle == CLASS_HANDLE}


def until_rate(poller: NetlinkKernel, devs: Sequence[str], rate: int, deadline: float) -> float:
    """Polled every millisecond: when every one of ``devs`` has its class at ``rate``."""
    while time.monotonic() < deadline:
        got = class_rates(poller, devs)
        if all(got.get(d) == rate for d in devs):
            return time.monotonic()
        time.sleep(0.001)
    raise BenchError(f"{devs}: rate {rate * 8 // 1000} kbit/s not in effect "
                     f"({ {d: r * 8 // 1000 for d, r in class_rates(poller, devs).items()} })")


def qos_model(api: InProcessApi) -> tuple[str, dict[str, str], list[dict[str, Any]]]:
    """Through the API: a network, a policy with a 10 Mbit/s limit in each
    direction, two ports bound here with it.  Returns (policy, direction ->
    rule id, ports)."""
    call = api.call
    net = call("POST", "/v2.0/networks", {"network": {"name": "qb"}})["network"]
    call("POST", "/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.94.0.0/24",
                                              "ip_version": 4}})
    pol = call("POST", "/v2.0/qos/policies", {"policy": {"name": "qb"}})["policy"]["id"]
    rules = {d: call("POST", f"/v2.0/qos/policies/{pol}/bandwidth_limit_rules", {
        "bandwidth_limit_rule": {"max_kbps": RATES[0], "direction": d}}
    )["bandwidth_limit_rule"]["id"] for d in DIRECTIONS}
    ports = [call("POST", "/v2.0/ports", {"port": {
        "network_id": net["id"], "binding:host_id": HOST, "qos_policy_id": pol}})["port"]
        for _ in range(2)]
    return pol, rules, ports


def change_latency(env: Env, changes: int, kernels: list[NetlinkKernel]) -> Latency:
    """``changes`` max_kbps changes, alternately of the egress and the ingress
    rule, each to a rate not used before; timed until both ports' classes
    (their ifbs' for egress, their taps' for ingress) have it."""
    api = InProcessApi()
    host = env.netns("lat-h")
    run(["ip", "-n", host, "addr", "add", f"{UNDERLAY}/32", "dev", "lo"])
    run(in_ns(host, ["sysctl", "-q", "-w", *(f"{k}=0" for k in SYSCTLS)]), check=False)
    Liveness(api.store, HOST, UNDERLAY).register()
    pol, rules, ports = qos_model(api)
    for i, p in enumerate(ports):
        add_vm(env, host, f"lat-{'ab'[i]}", p["mac_address"], p["fixed_ips"][0]["ip_address"],
               tap_name(p["id"]))
    devs = {"egress": [qos_ifb_name(p["id"]) for p in ports],
            "ingress": [tap_name(p["id"]) for p in ports]}
    poller = NetlinkKernel(host)
    kernels.append(poller)
    made: list[Recording] = []
    loop = AgentLoop(api.store, Reconciler(HOST, UNDERLAY, api.store, None,  # type: ignore[arg-type]
                                           ModelView(), firewall=False), resync_interval=3600)
    thread = threading.Thread(target=agent_thread, args=(host, loop, made), daemon=True)
    thread.start()
    out = Latency()
    try:
        wait_active(api, [p["id"] for p in ports])
        for d in DIRECTIONS:
            until_rate(poller, devs[d], RATES[0] * 125, time.monotonic() + 30)
        for k in range(changes):
            d, kbps = DIRECTIONS[k % 2], RATES[0] + 1000 * (k + 1)
            before = len(made[0].applied)
            t0 = time.monotonic()
            api.call("PUT", f"/v2.0/qos/policies/{pol}/bandwidth_limit_rules/{rules[d]}",
                     {"bandwidth_limit_rule": {"max_kbps": kbps}})
            t1 = time.monotonic()
            got = until_rate(poller, devs[d], kbps * 125, t1 + 10)
            out.ms[d].append((got - t1) * 1000)
            out.from_call.append((got - t0) * 1000)
            time.sleep(0.05)  # the pass that made it is over: its changes are all noted
            out.changes.append("; ".join(c for _, c in made[0].applied[before:]))
    finally:
        loop.stopping.set()
        thread.join(10)
        api.store.close()
    return out


# --------------------------------------------------------------------------- report
def kbit(bps: float) -> str:
    return f"{bps / 1000:>12,.0f}"


def report_accuracy(runs: Runs, goals: list[tuple[str, bool]]) -> list[str]:
    head = (f"{'direction':<9}{'set kbit/s':>12}{'unshaped':>13}  {'hand-written goodput':>20}"
            f"{'frames':>13}{'%set':>7}  {'Overcast goodput':>16}{'frames':>13}{'%set':>7}"
            f"{'ov/hand':>8}")
    out = [head, "-" * len(head)]
    unshaped = runs.med("unshaped")
    for kbps in RATES:
        for d in DIRECTIONS:
            hand, ov = runs.med(key("hand", d, kbps)), runs.med(key("ov", d, kbps))
            set_bps = kbps * 1000
            ph, po = hand * FRAME / set_bps * 100, ov * FRAME / set_bps * 100
            ratio = ov / hand
            out.append(f"{d:<9}{kbps:>12,}{kbit(unshaped)} {kbit(hand):>21}{kbit(hand * FRAME)}"
                       f"{ph:>6.1f}%  {kbit(ov):>16}{kbit(ov * FRAME)}{po:>6.1f}%{ratio:>8.3f}")
            goals.append((f"{d} {kbps:,} kbit/s: Overcast's frame rate {po:.1f}% of the set rate "
                          f"(within +-{GOAL_PCT:g}%)", abs(po - 100) <= GOAL_PCT))
            goals.append((f"{d} {kbps:,} kbit/s: Overcast/hand-written {ratio:.3f} "
                          f"({PARITY[0]}-{PARITY[1]})", PARITY[0] <= ratio <= PARITY[1]))
    out.append("  kbit/s: goodput (iperf3 end.sum_received) and frames = goodput x "
               f"{MTU + 14}/{MTU - 52}; %set: frames over the set rate; unshaped: one "
               "measurement per round, the same for every row")
    if max(len(xs) for xs in runs.bps.values()) > 1:
        out.append("  runs, frames as % of the set rate (hand-written / Overcast):")
        for kbps in RATES:
            for d in DIRECTIONS:
                each = [", ".join(f"{x * FRAME / kbps / 10:.1f}" for x in runs.bps.get(
                    key(side, d, kbps), [])) for side in ("hand", "ov")]
                out.append(f"    {d:<8}{kbps:>10,}: {each[0]}  /  {each[1]}")
    out.append("  bursts (bytes, Overcast's Shaper, used by the hand-written too): "
               + ", ".join(f"{k:,} kbit/s {b:,}" for k, b in sorted(runs.bursts.items())))
    return out


def report_cost(runs: Runs, goals: list[tuple[str, bool]]) -> list[str]:
    u = runs.med("unshaped")
    out = [f"cost on an unlimited port (goodput, kbit/s; unshaped {u / 1000:,.0f}):"]
    cases = [("nopolicy", "Overcast, no policy (after one was removed)")]
    cases += [(key("unlimited", "", k), f"Overcast, {k:,} kbit/s both ways, both ports")
              for k in UNLIMITED]
    for k, label in cases:
        x = runs.med(k)
        out.append(f"  {label:<55}{x / 1000:>12,.0f}  {x / u * 100:6.1f}% of unshaped")
    for lim in UNLIMITED:
        if u * FRAME > 0.9 * lim * 1000:
            out.append(f"  (unshaped frames {u * FRAME / 1e9:.1f} Gbit/s: a {lim // 1_000_000} "
                       "Gbit/s limit is not above this path's line rate, it may bind)")
    out.append(f"  no policy: no ifb, no htb 4f43: and no ingress qdisc left (netlink); the "
               f"taps' root qdisc (ip link): {runs.tap_qdiscs}")
    goals.append(("no policy: no tc object of ours on the taps", bool(runs.tap_qdiscs)))
    for k in ("unshaped", "nopolicy", *(key("unlimited", "", k) for k in UNLIMITED)):
        out.append(f"  runs {k}: " + ", ".join(f"{x / 1e9:.2f}" for x in runs.bps.get(k, []))
                   + " Gbit/s")
    return out


def report_latency(lat: Latency, goals: list[tuple[str, bool]]) -> list[str]:
    every = [x for xs in lat.ms.values() for x in xs]
    out = [f"policy change latency ({len(every)} max_kbps changes, from the API's answer "
           "until the htb class of both ports' devices has the new rate, read by netlink "
           "every 1 ms):"]
    for d, xs in [*lat.ms.items(), ("all", every)]:
        if xs:
            out.append(f"  {d:<8} median {statistics.median(xs):7.1f} ms   max {max(xs):7.1f} ms"
                       f"   ({', '.join(f'{x:.0f}' for x in xs)})")
    if lat.from_call:
        out.append(f"  from sending the request: median {statistics.median(lat.from_call):.1f} "
                   f"ms, max {max(lat.from_call):.1f} ms")
    kinds = sorted({c.split(" ", 1)[0] + " " + c.split(" ")[1] for ch in lat.changes
                    for c in ch.split("; ") if c})
    out.append(f"  what the agent applied per change: {', '.join(kinds) or 'nothing noted'}"
               f" (e.g. {lat.changes[0] if lat.changes else '-'})")
    in_place = all(c.startswith("update shape ") for ch in lat.changes for c in ch.split("; ")
                   if c) and bool(lat.changes)
    goals.append(("a rate change replaces the class in place (only 'update shape' applied)",
                  in_place))
    if every:
        goals.append((f"a policy change in effect: max {max(every):.0f} ms "
                      f"(<= {GOAL_CHANGE_MS:.0f} ms)", max(every) <= GOAL_CHANGE_MS))
    return out


def report(runs: Runs, lat: Latency | None, args: argparse.Namespace) -> list[str]:
    out = [f"qos: MTU {MTU}, one host, VM a -> VM b through Overcast's bridge; iperf3 TCP "
           f"single stream -O 1 -t {args.seconds:g}; median of {args.rounds} interleaved "
           f"rounds; cpus={os.cpu_count()}, kernel {os.uname().release}; {args.load}", ""]
    goals: list[tuple[str, bool]] = []
    if runs.bps:
        out += [*report_accuracy(runs, goals), "", *report_cost(runs, goals), ""]
    if lat is not None:
        out += [*report_latency(lat, goals), ""]
    return out + ["goals:"] + [f"  {'PASS' if ok else 'FAIL'}  {what}" for what, ok in goals]


# --------------------------------------------------------------------------- main
def options(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1 round of 2 s tests")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    p.add_argument("--seconds", type=float, default=5.0, help="iperf3 -t (after -O 1)")
    p.add_argument("--changes", type=int, default=10, help="policy changes timed")
    p.add_argument("--only", choices=["all", "traffic", "latency"], default="all")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 1, 2.0
    return args


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> int:
    args = options(argv)
    if os.geteuid() != 0:
        print("qos.py needs root (network namespaces)", file=sys.stderr)
        return 2
    for need in ("ip", "tc", "iperf3", "ss"):
        if shutil.which(need) is None:
            print(f"qos.py needs {need} (scripts/setup installs it)", file=sys.stderr)
            return 2
    env, kernels = Env(PREFIX), list[NetlinkKernel]()
    runs = Runs()
    lat: Latency | None = None
    started, before, failed = time.monotonic(), loadavg(), ""
    try:
        with signals_raise():
            if args.only in ("all", "traffic"):
                print("building the unshaped, hand-written and Overcast hosts ...", flush=True)
                beds = {k: build(env, k, kernels) for k in ("u", "h", "o")}
                traffic(env, beds, args, runs)
            if args.only in ("all", "latency") and args.changes > 0:
                print(f"{args.changes} policy changes through the API and an agent ...",
                      flush=True)
                lat = change_latency(env, args.changes, kernels)
    except KeyboardInterrupt:
        print("interrupted: cleaning up", file=sys.stderr)
        return 130
    except BenchError as exc:
        failed = str(exc)
    finally:
        for k in kernels:
            k.close()
        env.close()
    args.load = f"load {before} before, {loadavg()} after"
    print("\n" + "\n".join(report(runs, lat, args)))
    print(f"(whole run {time.monotonic() - started:.0f} s)")
    if failed:
        print(f"FAILED, the figures above are what was measured before: {failed}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
