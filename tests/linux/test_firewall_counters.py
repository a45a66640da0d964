"""Per-rule counters on the real kernel (root): real TCP connections
through a port raise the counters of the rule that admitted them and no
other, as the agent reports them into the store; and the upgrades that
change the rule sets' declarations (their counters; their key order, the
address first and the tag last) make the sets again while the chains use
them, in one batch the kernel accepts, and keep traffic flowing.

The host and its VMs are those of ``test_firewall_packets.py`` (its
``host`` fixture: namespaces ``oc-fw-<run>-<test>h`` / ``...v<n>``)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace

import pytest

from overcast.agent import AgentLoop, ModelView, Reconciler
from overcast.agent.reconciler import COUNTERS_EVERY
from overcast.linux.netlink import NetlinkKernel
from overcast.model import keys
from overcast.model.types import Network, Port, SecurityGroup, SecurityGroupRule
from overcast.plan import HostView, firewall, plan_host
from overcast.plan.diff import diff
from overcast.plan.firewall_chains import FIELDS, chains, sets
from overcast.plan.firewall_counters import hits
from overcast.plan.names import FW_TABLE as FW
from overcast.plan.state import KernelState
from overcast.plan.subsystems.firewall import NftRuleset
from overcast.store import MemoryStore
from plan.scenarios import HOSTS
from plan.test_firewall_golden import WEB, group, rule, vm

from . import test_firewall_packets as packets
from .test_firewall_packets import LOCAL, MakeHost, blocked_syn, closed, exchange, ping, talk
from .test_firewall_wire import Capture

pytestmark = pytest.mark.root
host = packets.host  # the fixture: one host namespace and its VMs per test
SSH = rule(50, WEB, protocol="tcp", port_range_min=22, port_range_max=22)
HTTP = rule(51, WEB, protocol="tcp", port_range_min=80, port_range_max=80)
OUT = rule(52, WEB, "egress")
PING = rule(53, WEB, protocol="icmp", port_range_min=8)  # echo requests, any code
# the rule sets' keys as the compiler wrote them before the address came first
TAG_FIRST = {"any": ("tag", "addr"), "proto": ("tag", "addr", "proto"),
             "port": ("tag", "addr", "proto", "port"), "icmp": ("tag", "addr", "proto", "port")}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def agent_on(kernel: object, ports: list[Port]) -> tuple[MemoryStore, AgentLoop, Clock]:
    """An agent for h1 over ``kernel``, its store holding the same world as the host's view."""
    store = MemoryStore()
    for name, ip in HOSTS.items():
        store.put(keys.host(name), json.dumps({"host": name, "underlay_ip": ip}).encode())
    objects: list[Network | Port | SecurityGroup | SecurityGroupRule] = [
        *LOCAL, *ports, group(WEB), SSH, HTTP, OUT]
    for obj in objects:
        store.put(keys.obj(obj.KIND, obj.id), json.dumps(obj.to_stored()).encode())
    clock = Clock()
    rec = Reconciler("h1", HOSTS["h1"], store, kernel, ModelView(), clock=clock)  # type: ignore[arg-type]
    return store, AgentLoop(store, rec, resync_interval=60.0, clock=clock), clock


def reported(store: MemoryStore, loop: AgentLoop, clock: Clock) -> dict[str, list[int]]:
    clock.now += COUNTERS_EVERY
    loop.dirty = True
    result = loop.step()
    assert result is not None and not result.errors, result and [e.render() for e in result.errors]
    kv = store.get(keys.firewall_counters("h1"))
    return json.loads(kv.value)["rules"] if kv else {}


def test_a_connection_counts_for_the_rule_that_admitted_it_and_no_other(host: MakeHost) -> None:
    ports = [vm(1, "h1", "10.0.0.1", (WEB,)), vm(2, "h1", "10.0.0.2", (WEB,))]
    h = host(ports, [group(WEB)], [SSH, HTTP, OUT])
    server, client = h.vms[1], h.vms[2]
    store, loop, clock = agent_on(h.kernel, ports)
    first = reported(store, loop, clock)
    assert loop.last is not None and loop.last.converged  # the agent sees the host as built
    assert SSH.id not in first and HTTP.id not in first
    for _ in range(3):
        closed(talk(client, server, 22))
    after_ssh = reported(store, loop, clock)
    # each new connection's SYN meets the lookup (established packets do not)
    assert after_ssh[SSH.id][0] >= 3 and after_ssh[SSH.id][1] >= 3 * 60
    assert HTTP.id not in after_ssh
    assert after_ssh[OUT.id][0] >= 3  # the client's egress rule let the SYNs out
    closed(talk(client, server, 80))
    after_http = reported(store, loop, clock)
    assert after_http[HTTP.id][0] >= 1
    assert after_http[SSH.id] == after_ssh[SSH.id]  # untouched by the other rule's traffic
    status = json.loads(store.get(keys.port_status(server.port.id)).value)  # type: ignore[union-attr]
    assert status["status"] == "ACTIVE" and status["firewall"] == {
        "port_security": True, "security_groups": [WEB]}


def test_the_upgrade_to_counted_sets_is_accepted_and_traffic_still_flows(host: MakeHost) -> None:
    ports = [vm(1, "h1", "10.0.0.1", (WEB,)), vm(2, "h1", "10.0.0.2", (WEB,))]
    h = host(ports, [group(WEB)], [SSH, OUT])
    server, client = h.vms[1], h.vms[2]
    plan = plan_host(h.view)
    (new,) = plan.state[NftRuleset]
    old = replace(new, sets=frozenset(replace(s, counter=False) for s in new.sets))
    before = KernelState.of(plan.state.records - {new}, [old])
    for state in (before, plan.state):  # back to an Overcast without counters, then up again
        errors = h.kernel.apply(diff(state, h.kernel.observe()))
        assert errors == [], [e.render() for e in errors]
        assert diff(state, h.kernel.observe()) == []
    closed(talk(client, server, 22))
    assert plan.firewall is not None
    (observed,) = h.kernel.observe(fresh=True)[NftRuleset]  # counters: listed now
    assert hits(observed, plan.firewall.sources)[SSH.id][0] >= 1


def recorded_batches(kernel: NetlinkKernel, monkeypatch: pytest.MonkeyPatch
                     ) -> list[list[dict[str, object]]]:
    """The nft batches ``kernel`` sends from now on, each still sent."""
    batches: list[list[dict[str, object]]] = []
    nft = kernel.nft

    def recorded(commands: list[dict[str, object]]) -> None:
        batches.append(commands)
        nft(commands)
    monkeypatch.setattr(kernel, "nft", recorded)
    return batches


def test_the_upgrade_to_address_first_keys_is_one_batch_and_traffic_still_flows(
        host: MakeHost, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host whose ruleset the previous compiler wrote (the tag first in
    every rule set's key) gets the current one: one update, one nft batch
    the kernel accepts (the sets are declared anew, the chains that look
    them up refilled); a connection opened before stays up, new ones meet
    the new sets: tcp/22 and pings pass, tcp/23 does not."""
    ports = [vm(1, "h1", "10.0.0.1", (WEB,)), vm(2, "h1", "10.0.0.2", (WEB,))]
    h = host(ports, [group(WEB)], [SSH, OUT, PING])
    server, client = h.vms[1], h.vms[2]
    new = plan_host(h.view).state
    old = tag_first(h.view, monkeypatch)
    assert old != new
    errors = h.kernel.apply(diff(old, h.kernel.observe()))
    assert errors == [] and diff(old, h.kernel.observe()) == [], [e.render() for e in errors]
    assert set_type(h.kernel, "in4_port") == ("mark", "ipv4_addr", "inet_proto", "inet_service")
    before = talk(client, server, 22)  # opened under the old ruleset
    batches = recorded_batches(h.kernel, monkeypatch)
    changes = diff(new, h.kernel.observe())
    assert [(c.op, type(c.obj).__name__) for c in changes] == [("update", "NftRuleset")]
    errors = h.kernel.apply(changes)
    assert errors == [], [e.render() for e in errors]
    assert len(batches) == 1  # accepted whole: no narrowed trials
    assert diff(new, h.kernel.observe()) == []
    assert set_type(h.kernel, "in4_port") == ("ipv4_addr", "inet_service", "inet_proto", "mark")
    exchange(*before, b"after the upgrade")
    exchange(before[1], before[0], b"and back")
    closed(before)
    closed(talk(client, server, 22))
    ping(client, server.ip)
    cap = Capture(server.ns)
    try:
        blocked_syn(client, server, 23, cap)
    finally:
        cap.close()


def tag_first(view: HostView, monkeypatch: pytest.MonkeyPatch) -> KernelState:
    """The desired state the compiler gave ``view`` before the key order changed."""
    with monkeypatch.context() as m:
        for kind, fields in TAG_FIRST.items():
            m.setitem(FIELDS, kind, fields)
        # the compiler makes its constant sets and chains once, and keeps the elements of the
        # last plans: both made again under the old order, and forgotten after it
        m.setattr(firewall, "_SETS", frozenset(sets()))
        m.setattr(firewall, "_CHAINS", frozenset(chains()))
        firewall.forget()
        try:
            return plan_host(view).state
        finally:
            firewall.forget()


def set_type(kernel: NetlinkKernel, name: str) -> tuple[str, ...]:
    (ruleset,) = kernel.observe()[NftRuleset]
    (found,) = [s for s in ruleset.sets if s.family == "inet" and s.name == name]
    return found.type


def test_the_upgrade_to_staged_sets_and_a_jumped_overlay_is_one_batch(
        host: MakeHost, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host with the layout before the staged sets (no ``*_revoked`` and
    ``*_staged`` sets, one lookup rule per shape) and with ``overlay`` as a
    base chain of the bridge's forward hook: made here by hand from the
    current one; the agent's pass turns it into the current layout in one
    batch the kernel accepts, and traffic keeps flowing."""
    ports = [vm(1, "h1", "10.0.0.1", (WEB,)), vm(2, "h1", "10.0.0.2", (WEB,))]
    h = host(ports, [group(WEB)], [SSH, OUT, PING])
    server, client = h.vms[1], h.vms[2]
    new = plan_host(h.view).state
    side = [s.name for s in sets() if s.name.endswith(("_revoked", "_staged"))]
    assert side
    text = [f"flush chain inet {FW} {c}" for c in ("egress", "ingress")]
    # (nor were there the chains of logged ports, which look the sets up too)
    text += [f"{op} chain inet {FW} {c}" for c in ("egress_logged", "ingress_logged")
             for op in ("flush", "delete")]
    text += [f"delete set inet {FW} {name}" for name in side]
    text += [f"flush chain bridge {FW} forward", f"delete chain bridge {FW} overlay",
             f"add chain bridge {FW} overlay {{ type filter hook forward priority -100; policy accept; }}",
             f"add rule bridge {FW} overlay meta iifgroup 28515 meta oifgroup 28515 accept",
             f"add rule bridge {FW} forward accept",
             f"add rule inet {FW} egress accept", f"add rule inet {FW} ingress accept"]
    subprocess.run(["ip", "netns", "exec", h.ns, "nft", "-f", "-"], input="\n".join(text) + "\n",
                   text=True, check=True)
    before = talk(client, server, 22)
    batches = recorded_batches(h.kernel, monkeypatch)
    changes = diff(new, h.kernel.observe(fresh=True))
    assert [(c.op, type(c.obj).__name__) for c in changes] == [("update", "NftRuleset")]
    errors = h.kernel.apply(changes)
    assert errors == [], [e.render() for e in errors]
    assert len(batches) == 1  # accepted whole: no narrowed trials, nothing staged
    assert diff(new, h.kernel.observe(fresh=True)) == []
    exchange(*before, b"after the upgrade")
    closed(before)
    closed(talk(client, server, 22))
    ping(client, server.ip)
