"""A flat provider network through the agent: its port is bound where the
host maps the network's physical network to an uplink (the uplink joins the
network's bridge, nothing goes on the overlay), and DOWN with the reason
where it does not; the uplink is the operator's device and is never deleted."""

from __future__ import annotations

from overcast.agent import AgentLoop
from overcast.linux import FakeKernel
from overcast.model.types import FixedIP, Network, Port
from overcast.plan import names
from overcast.store import MemoryStore

from .test_reconciler import ACTIVE_ON_H1, put_obj, settle, setup, status

FLAT = "f1a70000-0000-4000-8000-000000000001"
PORT_F = "f1a70000-0000-4000-8000-0000000000f1"


def flat_world(mapped: bool) -> tuple[MemoryStore, FakeKernel, AgentLoop]:
    store, kernel, loop = setup()
    put_obj(store, Network(id=FLAT, network_type="flat", physical_network="external", mtu=1500))
    put_obj(store, Port(id=PORT_F, network_id=FLAT, mac_address="fa:16:3e:00:0f:01",
                        binding_host_id="h1", fixed_ips=(FixedIP("s9", "203.0.113.20"),)))
    kernel.add_device(names.tap_name(PORT_F))
    kernel.add_device("eth9", kind="veth", mtu=9000)
    if mapped:
        loop.reconciler.physical_networks = {"external": "eth9"}
    return store, kernel, loop


def test_a_mapped_physical_network_bridges_the_uplink_and_binds_the_port() -> None:
    store, kernel, loop = flat_world(mapped=True)
    settle(loop)
    bridge = names.bridge_name(FLAT)
    assert kernel.links["eth9"].master == bridge
    assert kernel.links["eth9"].mtu == 9000  # the operator's MTU, left alone
    assert kernel.links[names.tap_name(PORT_F)].master == bridge
    assert names.vxlan_name(FLAT) not in kernel.links
    assert status(store, PORT_F) == ACTIVE_ON_H1
    # the mapping goes (the agent restarted without it): the bridge goes, the uplink stays,
    # detached
    loop.reconciler.physical_networks = {}
    settle(loop)
    assert bridge not in kernel.links and kernel.links["eth9"].master == ""


def test_an_unmapped_physical_network_leaves_the_port_down_saying_why() -> None:
    store, kernel, loop = flat_world(mapped=False)
    settle(loop)
    assert names.bridge_name(FLAT) not in kernel.links
    assert status(store, PORT_F) == {
        "status": "DOWN", "host": "h1",
        "reason": f"network {FLAT}: physical network 'external' is not mapped on host h1 "
                  "(agent option --physical-network external=DEVICE)"}
