"""The agent reports what its firewall does: per-rule counters under the
host's counters key (when they changed, at most every COUNTERS_EVERY
seconds of its clock), and in each ACTIVE port's status the security
groups and port security the host enforces for it.  Fake kernel, memory
store: packets are stood in for by the fake's counters."""

from __future__ import annotations

import json

from overcast.agent import AgentLoop, ModelView, Reconciler
from overcast.agent.reconciler import COUNTERS_EVERY
from overcast.linux import FakeKernel
from overcast.model import keys
from overcast.model.types import Port, SecurityGroup, SecurityGroupRule
from overcast.plan import names
from overcast.plan.names import FW_TABLE
from overcast.store import MemoryStore, Store

from .test_reconciler import PORT_A, Clock, port, put_obj, setup

WEB = "3e000000-0000-4000-8000-000000000002"
SSH = "00000030-5e5e-4000-8000-000000000030"
DNS = "00000031-5e5e-4000-8000-000000000031"
OUT = "00000032-5e5e-4000-8000-000000000032"


def put(store: Store, obj: Port | SecurityGroup | SecurityGroupRule) -> None:
    store.put(keys.obj(obj.KIND, obj.id), json.dumps(obj.to_stored()).encode())


def world() -> tuple[MemoryStore, FakeKernel, AgentLoop, Clock]:
    store, _, _ = setup()
    put(store, SecurityGroup(id=WEB))
    put(store, SecurityGroupRule(id=SSH, security_group_id=WEB, direction="ingress", ethertype="IPv4",
                                 protocol="tcp", port_range_min=22, port_range_max=22))
    put(store, SecurityGroupRule(id=DNS, security_group_id=WEB, direction="ingress", ethertype="IPv4",
                                 protocol="udp", port_range_min=53, port_range_max=53))
    put(store, SecurityGroupRule(id=OUT, security_group_id=WEB, direction="egress", ethertype="IPv4"))
    put_obj(store, port(PORT_A, "h1", "fa:16:3e:00:00:01", "10.0.0.5").replace(security_groups=(WEB,)))
    kernel = FakeKernel()
    kernel.add_device(names.tap_name(PORT_A))
    clock = Clock()
    rec = Reconciler("h1", "198.18.0.11", store, kernel, ModelView(), clock=clock)
    loop = AgentLoop(store, rec, resync_interval=60.0, clock=clock)
    for _ in range(2):  # the chains, then the tap
        loop.dirty = True
        loop.step()
    return store, kernel, loop, clock


def counters(store: Store, host: str = "h1") -> object:
    kv = store.get(keys.firewall_counters(host))
    return json.loads(kv.value) if kv else None


def again(loop: AgentLoop) -> None:
    loop.dirty = True
    assert loop.step() is not None


def test_an_active_port_says_which_groups_its_host_enforces() -> None:
    store, _, _, _ = world()
    kv = store.get(keys.port_status(PORT_A))
    assert kv is not None
    assert json.loads(kv.value) == {"status": "ACTIVE", "host": "h1", "firewall": {
        "port_security": True, "security_groups": [WEB]}}


def test_hits_are_written_per_rule_when_they_change_at_most_every_interval() -> None:
    store, kernel, loop, clock = world()
    assert counters(store) is None  # nothing hit yet: no key
    kernel.nftables.count("inet", FW_TABLE, "in4_port_any", SSH, 4, 240)
    clock.now += COUNTERS_EVERY
    again(loop)
    assert counters(store) == {"host": "h1", "rules": {SSH: [4, 240]}}
    kernel.nftables.count("inet", FW_TABLE, "in4_port_any", DNS, 1, 70)
    again(loop)  # too soon: not written
    assert counters(store) == {"host": "h1", "rules": {SSH: [4, 240]}}
    clock.now += COUNTERS_EVERY
    again(loop)
    assert counters(store) == {"host": "h1", "rules": {SSH: [4, 240], DNS: [1, 70]}}
    rev = store.revision()
    clock.now += COUNTERS_EVERY
    again(loop)  # unchanged: nothing written
    assert store.revision() == rev


def test_a_restarted_agent_writes_nothing_when_the_counters_are_as_stored() -> None:
    store, kernel, loop, clock = world()
    kernel.nftables.count("inet", FW_TABLE, "eg4_any", OUT, 2, 120)
    clock.now += COUNTERS_EVERY
    again(loop)
    assert counters(store) == {"host": "h1", "rules": {OUT: [2, 120]}}
    rev = store.revision()
    fresh = Reconciler("h1", "198.18.0.11", store, kernel, ModelView(), clock=clock)
    again(AgentLoop(store, fresh, resync_interval=60.0, clock=clock))
    assert store.revision() == rev


def test_a_rule_removed_takes_its_counters_and_with_no_hits_left_the_key() -> None:
    store, kernel, loop, clock = world()
    kernel.nftables.count("inet", FW_TABLE, "in4_port_any", SSH, 3, 180)
    clock.now += COUNTERS_EVERY
    again(loop)
    assert counters(store) == {"host": "h1", "rules": {SSH: [3, 180]}}
    store.delete(keys.obj("security_group_rule", SSH))
    clock.now += COUNTERS_EVERY
    again(loop)  # its element goes: nothing hit any more, the key goes
    assert counters(store) is None


def test_an_unreadable_counters_key_is_rewritten_and_the_pass_goes_on() -> None:
    """A value the agent cannot read back (not UTF-8, not JSON) is one that
    differs: a restarted agent's pass writes its own (or, with no hits,
    deletes the key) instead of failing after apply."""
    for junk in (b"\xff\xfe\x00", b"not json", b'{"host": "h1", "rules": {"x": [1, 2]}}'):
        store, kernel, loop, clock = world()
        key = keys.firewall_counters("h1")
        store.put(key, junk)
        fresh = Reconciler("h1", "198.18.0.11", store, kernel, ModelView(), clock=clock)
        again(AgentLoop(store, fresh, resync_interval=60.0, clock=clock))
        assert store.get(key) is None, junk  # nothing hit: no key
        store.put(key, junk)
        kernel.nftables.count("inet", FW_TABLE, "in4_port_any", SSH, 4, 240)
        fresh = Reconciler("h1", "198.18.0.11", store, kernel, ModelView(), clock=clock)
        again(AgentLoop(store, fresh, resync_interval=60.0, clock=clock))
        assert counters(store) == {"host": "h1", "rules": {SSH: [4, 240]}}, junk


def test_an_agent_is_not_woken_by_another_hosts_counters() -> None:
    """Agents do not watch ``/oc/counters/``: N agents writing counters every
    2 s would otherwise send each of them every other host's writes."""
    store, _, loop, _ = world()
    assert loop.step() is None  # settled
    revision = loop.view.revision
    for host in ("h2", "h3"):
        store.put(keys.firewall_counters(host), json.dumps(
            {"host": host, "rules": {SSH: [1, 60]}}).encode())
    assert loop.watcher is not None
    assert loop.watcher.next_batch(0.0) == []
    assert loop.step() is None and loop.view.revision == revision
    status = keys.port_status("00000000-0000-4000-8000-0000000000ff")
    store.put(status, b'{"status": "ACTIVE", "host": "h2"}')  # a watched key still arrives
    assert [e.key for e in loop.watcher.next_batch(1.0)] == [status]
