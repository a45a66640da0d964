"""The agent's core with FakeKernel + MemoryStore: no root needed."""

from __future__ import annotations

import json

from overcast.agent import AgentLoop, ModelView, Reconciler
from overcast.agent.liveness import Liveness
from overcast.linux import FakeKernel
from overcast.model import keys
from overcast.model.types import FixedIP, Network, Port
from overcast.plan import names
from overcast.plan.state import ApplyError
from overcast.store import MemoryStore, Store

NET = "11111111-2222-3333-4444-555555555555"
PORT_A = "aaaaaaaa-0000-0000-0000-000000000001"
PORT_B = "bbbbbbbb-0000-0000-0000-000000000002"
# an ACTIVE port says what h1 enforces for it (port security on, no groups here)
ACTIVE_ON_H1 = {"status": "ACTIVE", "host": "h1",
                "firewall": {"port_security": True, "security_groups": []}}


def put_obj(store: Store, obj: Network | Port) -> None:
    store.put(keys.obj(obj.KIND, obj.id), json.dumps(obj.to_stored()).encode())


def port(pid: str, host: str, mac: str, ip: str) -> Port:
    return Port(id=pid, network_id=NET, mac_address=mac, binding_host_id=host,
                fixed_ips=(FixedIP("s1", ip),))


def setup(host: str = "h1") -> tuple[MemoryStore, FakeKernel, AgentLoop]:
    store = MemoryStore()
    for name, ip in (("h1", "198.18.0.11"), ("h2", "198.18.0.12")):
        store.put(keys.host(name), json.dumps({"host": name, "underlay_ip": ip}).encode())
    put_obj(store, Network(id=NET, segmentation_id=42, mtu=1450))
    put_obj(store, port(PORT_A, "h1", "fa:16:3e:00:00:01", "10.0.0.5"))
    put_obj(store, port(PORT_B, "h2", "fa:16:3e:00:00:02", "10.0.0.6"))
    kernel = FakeKernel()
    ip = "198.18.0.11" if host == "h1" else "198.18.0.12"
    rec = Reconciler(host, ip, store, kernel, ModelView())
    return store, kernel, AgentLoop(store, rec, resync_interval=5.0)


def status(store: Store, pid: str) -> dict[str, str] | None:
    kv = store.get(keys.port_status(pid))
    return json.loads(kv.value) if kv else None


def test_port_down_until_device_appears_then_active() -> None:
    store, kernel, loop = setup()
    result = loop.step()
    assert result is not None and result.waiting == [PORT_A]
    assert status(store, PORT_A) == {"status": "DOWN", "host": "h1",
                                     "reason": f"device {names.tap_name(PORT_A)} does not exist"}
    assert status(store, PORT_B) is None  # not ours
    kernel.add_device(names.tap_name(PORT_A))
    loop.step()
    assert status(store, PORT_A) == ACTIVE_ON_H1
    tap = kernel.links[names.tap_name(PORT_A)]
    assert tap.master == names.bridge_name(NET) and tap.up and tap.mtu == 1450


def test_remote_port_gets_fdb_and_head_end_replication() -> None:
    store, kernel, loop = setup()
    kernel.add_device(names.tap_name(PORT_A))
    loop.step()
    vx = names.vxlan_name(NET)
    fdb = {(e.mac, e.dst) for e in kernel.fdb if e.dev == vx}
    assert fdb == {("00:00:00:00:00:00", "198.18.0.12"), ("fa:16:3e:00:00:02", "198.18.0.12")}


def settle(loop: AgentLoop) -> None:
    """Passes until one changes nothing: on a fresh kernel the first makes
    the firewall's chains and holds the tap back, the second attaches it."""
    for _ in range(4):
        loop.dirty = True
        result = loop.step()
        if result is not None and result.converged:
            return
    raise AssertionError("no converged pass")


def test_a_fresh_host_makes_the_firewall_before_any_tap_joins_a_bridge() -> None:
    store, kernel, loop = setup()
    tap = names.tap_name(PORT_A)
    kernel.add_device(tap)
    first = loop.step()
    assert first is not None and first.held == [PORT_A] and not first.errors
    assert kernel.links[tap].master == ""  # not attached: the chains did not exist yet
    assert kernel.nftables.rows()  # they do now
    assert status(store, PORT_A) == {"status": "DOWN", "host": "h1", "reason":
                                     f"{tap} is not attached to {names.bridge_name(NET)} yet "
                                     "(its firewall first)"}
    assert loop.retry_at is not None and loop.retry_at <= loop.clock()  # the next pass at once
    second = loop.step()
    assert second is not None and second.held == [] and kernel.links[tap].master
    assert status(store, PORT_A) == ACTIVE_ON_H1
    assert loop.retry_at is None


def test_second_pass_changes_nothing_and_writes_nothing() -> None:
    store, kernel, loop = setup()
    kernel.add_device(names.tap_name(PORT_A))
    settle(loop)
    rev = store.revision()
    loop.dirty = True
    result = loop.step()
    assert result is not None and result.converged
    assert store.revision() == rev


def test_device_removed_goes_down_and_drift_is_repaired() -> None:
    store, kernel, loop = setup()
    tap = names.tap_name(PORT_A)
    kernel.add_device(tap)
    loop.step()
    kernel.fdb.clear()
    kernel.set_link(tap, master="")
    loop.dirty = True
    result = loop.step()
    assert result is not None and len(result.changes) == 3
    assert kernel.links[tap].master == names.bridge_name(NET)
    kernel.remove_device(tap)
    loop.dirty = True
    loop.step()
    assert status(store, PORT_A)["status"] == "DOWN"  # type: ignore[index]


def test_port_and_network_deletion_clean_kernel_and_status() -> None:
    store, kernel, loop = setup()
    kernel.add_device(names.tap_name(PORT_A))
    loop.step()
    store.delete(keys.obj("port", PORT_A))
    loop.step()
    assert status(store, PORT_A) is None
    assert names.bridge_name(NET) not in kernel.links
    assert names.vxlan_name(NET) not in kernel.links
    assert kernel.links[names.tap_name(PORT_A)].master == ""


def test_restart_with_empty_memory_converges_without_changes() -> None:
    store, kernel, loop = setup()
    kernel.add_device(names.tap_name(PORT_A))
    settle(loop)
    rev = store.revision()
    fresh = AgentLoop(store, Reconciler("h1", "198.18.0.11", store, kernel, ModelView()))
    result = fresh.step()
    assert result is not None and result.converged
    assert store.revision() == rev


def test_compacted_watch_triggers_full_reread() -> None:
    store, kernel, loop = setup()
    loop.step()
    put_obj(store, port("cccccccc-0000-0000-0000-000000000003", "h1", "fa:16:3e:00:00:03", "10.0.0.7"))
    store.compact(store.revision())
    loop.step()
    assert any(k.endswith("cccccccc-0000-0000-0000-000000000003") for k in loop.view.values)


def test_liveness_registers_host_and_alive_key() -> None:
    store = MemoryStore()
    life = Liveness(store, "h9", "198.18.0.19", {"vxlan": {"available": True}}, ttl=5.0)
    life.register()
    host = json.loads(store.get(keys.host("h9")).value)  # type: ignore[union-attr]
    assert host["underlay_ip"] == "198.18.0.19" and host["host"] == "h9"
    assert store.get(keys.alive("h9")) is not None
    life.stop(revoke=True)
    assert store.get(keys.alive("h9")) is None


def test_device_lister_gates_passes_until_the_device_appears() -> None:
    store, kernel, _ = setup()
    rec = Reconciler("h1", "198.18.0.11", store, kernel, ModelView())
    loop = AgentLoop(store, rec, resync_interval=3600.0,
                     list_devices=lambda: frozenset(n for n in kernel.links if n.startswith("tap")))
    assert loop.step() is not None  # first pass: port waits for its device
    assert loop.step() is None  # nothing moved: no pass
    kernel.add_device(names.tap_name(PORT_A))
    result = loop.step()
    assert result is not None and result.statuses[PORT_A].status == "ACTIVE"
    kernel.remove_device(names.tap_name(PORT_A))
    result = loop.step()
    assert result is not None and result.statuses[PORT_A].status == "DOWN"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RefusingKernel(FakeKernel):
    """Refuses every change for the next ``refusals`` applies (a kernel that is
    briefly out of memory, a device renamed under us ...)."""

    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals

    def apply(self, changes):  # type: ignore[no-untyped-def]
        if self.refusals > 0:
            self.refusals -= 1
            return [ApplyError(c, "netlink error 12: Cannot allocate memory") for c in changes]
        return super().apply(changes)


def test_a_refused_pass_is_retried_soon_with_backoff() -> None:
    store, _, _ = setup()
    kernel = RefusingKernel(refusals=3)
    kernel.add_device(names.tap_name(PORT_A))
    clock = Clock()
    rec = Reconciler("h1", "198.18.0.11", store, kernel, ModelView(), clock=clock)
    loop = AgentLoop(store, rec, resync_interval=60.0, clock=clock)
    first = loop.step()
    assert first is not None and first.errors and status(store, PORT_A) == {
        "status": "DOWN", "host": "h1", "reason": first.errors[0].render()}
    assert loop.step() is None  # nothing changed and the retry is not due yet
    waits = []
    for _ in range(3):
        assert loop.retry_at is not None
        waits.append(round(loop.retry_at - clock.now, 3))
        clock.now = loop.retry_at
        result = loop.step()
        assert result is not None
    assert waits == [0.2, 0.4, 0.8]  # retried, backing off while the kernel refuses
    assert result is not None and not result.errors and result.held == [PORT_A]
    assert loop.retry_at == clock.now  # the tap joins once the chains exist: at once
    result = loop.step()
    assert result is not None and not result.held
    assert status(store, PORT_A) == ACTIVE_ON_H1
    assert loop.retry_at is None
    assert loop.step() is None  # converged: no more retries


def test_view_keeps_what_agents_read_and_drops_api_bookkeeping() -> None:
    """IPAM, MAC, segment and index keys are the API's business: the agent's view
    neither stores them nor turns dirty for them; hosts and statuses it keeps."""
    from overcast.store.base import Event

    store, _, loop = setup()
    store.put(keys.ipam("s1", "10.0.0.5"), b'"x"')
    store.put(keys.mac("fa:16:3e:00:00:01"), b'"x"')
    store.put(keys.index("port", "network_id", NET, PORT_A), b"")
    loop.full_read()
    view = loop.view
    assert not [k for k in view.values if k.startswith((keys.IPAM, keys.MAC, keys.IDX))]
    assert view.hosts() == {"h1": "198.18.0.11", "h2": "198.18.0.12"}
    rev = store.revision()
    assert not view.apply([Event("put", keys.ipam("s1", "10.0.0.6"), b'"y"', rev + 1),
                           Event("put", keys.index("port", "device_id", "vm", PORT_B), b"", rev + 2)])
    assert view.revision == rev + 2
    assert view.apply([Event("put", keys.host("h3"), b'{"host": "h3", "underlay_ip": "198.18.0.13"}',
                             rev + 3)])
    assert view.hosts()["h3"] == "198.18.0.13"
    view.apply([Event("put", keys.port_status(PORT_A), b'{"status": "ACTIVE", "host": "h1"}', rev + 4),
                Event("put", keys.port_status(PORT_B), b'{"status": "ACTIVE", "host": "h2"}', rev + 5)])
    assert set(view.statuses_of_host("h1")) == {PORT_A}
    view.apply([Event("delete", keys.port_status(PORT_A), b"", rev + 6),
                Event("delete", keys.host("h3"), b"", rev + 7)])
    assert view.statuses_of_host("h1") == {} and "h3" not in view.hosts()


def test_a_kernel_that_cannot_enforce_the_firewall_attaches_no_port() -> None:
    store, kernel, _ = setup()
    tap = names.tap_name(PORT_A)
    kernel.add_device(tap)
    kernel.set_link(tap, master="")
    why = "firewall cannot be enforced: kernel feature br_netfilter missing"
    rec = Reconciler("h1", "198.18.0.11", store, kernel, ModelView())
    rec.firewall_blocked = why
    loop = AgentLoop(store, rec, resync_interval=5.0)
    settle(loop)
    assert kernel.links[tap].master == ""
    assert status(store, PORT_A) == {"status": "DOWN", "host": "h1", "reason": why}
    off = Reconciler("h1", "198.18.0.11", store, kernel, ModelView(), firewall=False)
    off.firewall_blocked = why  # the firewall off: the features do not matter
    settle(AgentLoop(store, off, resync_interval=5.0))
    # the firewall off: the status says nothing about what is enforced
    assert kernel.links[tap].master and status(store, PORT_A) == {"status": "ACTIVE", "host": "h1"}


def test_firewall_blocked_names_the_missing_features() -> None:
    from overcast.agent.main import firewall_blocked

    ok = {n: {"available": True} for n in ("nft_bridge", "conntrack", "br_netfilter",
                                           "br_nf_call", "nft_firewall")}
    assert firewall_blocked(ok) == "" and firewall_blocked({}) == ""
    assert firewall_blocked({**ok, "br_netfilter": {"available": False}}) == \
        "firewall cannot be enforced: kernel feature br_netfilter missing"


def test_a_restarted_agents_first_pass_sweeps_every_zone_once() -> None:
    """An agent killed between an apply and its sweep: the next agent's
    first pass changes nothing and still deletes the entry its rules do not
    admit (port A has no security group: nothing comes in); later passes
    read nothing."""
    from overcast.plan.firewall_admits import Flow, all_zones
    from overcast.plan.subsystems.firewall import NftRuleset

    store, kernel, loop = setup()
    kernel.add_device(names.tap_name(PORT_A))
    settle(loop)
    (zone,) = all_zones(next(iter(kernel.observe()[NftRuleset])))
    stale = Flow(zone, 4, "10.0.0.6", "10.0.0.5", 6, 40000, 22)
    kernel.conntrack.entries, kernel.conntrack.dumped = {stale}, []
    restarted = AgentLoop(store, Reconciler("h1", "198.18.0.11", store, kernel, ModelView()),
                          resync_interval=5.0)
    result = restarted.step()
    assert result is not None and result.changes == []
    assert kernel.conntrack.dumped == [zone] and kernel.conntrack.entries == set()
    restarted.dirty = True
    restarted.step()
    assert kernel.conntrack.dumped == [zone]
