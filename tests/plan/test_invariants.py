"""Invariants over sequences of model states (Calico/Faucet style):
determinism under shuffling, convergence, idempotence, revert, ownership."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from overcast.agent.reconciler import reconcile
from overcast.linux import FakeKernel
from overcast.model.types import Network, Port
from overcast.plan import HostView, plan_host
from overcast.plan.diff import diff
from overcast.plan.names import is_owned, tap_name
from overcast.plan.state import KernelState
from overcast.plan.subsystems.fdb import FdbEntry
from overcast.plan.subsystems.firewall import NftRuleset
from overcast.plan.subsystems.links import Attachment, Bridge, Vxlan

from .scenarios import HOSTS, NET_A, NET_B, NET_F, NET_L, net, port, two_nets_three_hosts, view

Model = tuple[list[Network], list[Port]]
NET_IDS = [NET_A, NET_B, NET_L, NET_F]
ALL_PORTS = range(1, 9)
FOREIGN = ("br-foreign", "ocbnotmine", "tapforeign")


@st.composite
def models(draw: st.DrawFn) -> Model:
    networks = []
    for i, nid in enumerate(NET_IDS):
        kind = draw(st.sampled_from(["vxlan", "vxlan", "local", "flat"]))
        vni = draw(st.sampled_from([100 + i, 100 + i, 200 + i, 100]))  # sometimes a duplicate VNI
        networks.append(net(nid, vni, draw(st.sampled_from([1400, 1450])), kind))
    ports = []
    for n in ALL_PORTS:
        host = draw(st.sampled_from(["", "h1", "h1", "h2", "h3", "h9"]))
        if draw(st.booleans()):
            ports.append(port(n, draw(st.sampled_from(NET_IDS)), host, admin_state_up=draw(st.booleans())))
    return networks, ports


def shuffled(v: HostView, rng: random.Random) -> HostView:
    nets, ports, hosts = list(v.networks), list(v.ports), list(v.hosts.items())
    rng.shuffle(nets)
    rng.shuffle(ports)
    rng.shuffle(hosts)
    return HostView(v.host, v.underlay_ip, dict(hosts), nets, ports)


def fresh_kernel() -> FakeKernel:
    """A host with a tap for every possible port (the lab made them) and
    foreign devices that must survive everything."""
    kernel = FakeKernel()
    for n in ALL_PORTS:
        kernel.add_device(tap_name(port(n, NET_A, "").id))
    kernel.add_device("br-foreign", kind="bridge")
    kernel.add_device("ocbnotmine", kind="bridge", alias="not:ours")
    kernel.add_device("tapforeign")
    kernel.set_link("tapforeign", master="br-foreign")
    return kernel


def owned_view(state: KernelState) -> KernelState:
    """What a revert must restore: owned devices, fdb, what is attached to them."""
    ours = {b.name for b in state[Bridge]}
    attached = [a for a in state[Attachment] if a.master in ours]
    return KernelState.of(state[Bridge], state[Vxlan], attached, state[FdbEntry])


def step(kernel: FakeKernel, model: Model, host: str = "h1") -> KernelState:
    """Passes until nothing changes: one, or two on a host whose firewall
    chains were not there yet (its taps join their bridges in the second)."""
    desired = plan_host(view(host, *model)).state
    results = [reconcile(kernel, desired)]
    if results[0].changes:
        results.append(reconcile(kernel, desired))
    for result in results:
        assert result.errors == (), [e.render() for e in result.errors]
    observed = kernel.observe()
    assert owned_view(observed) == owned_view(desired)  # converged
    assert observed[NftRuleset] == desired[NftRuleset]
    assert diff(desired, observed) == []  # apply twice -> nothing
    assert kernel.links["tapforeign"].master == "br-foreign"
    assert {"br-foreign", "ocbnotmine"} <= set(kernel.links)
    for change in (c for r in results for c in r.changes):
        if change.op == "delete" and hasattr(change.obj, "alias"):
            assert is_owned(change.obj.name, change.obj.alias)
    return observed


@settings(max_examples=60, deadline=None)
@given(model=models(), seed=st.integers(0, 2**32))
def test_plan_is_deterministic_under_shuffling(model: Model, seed: int) -> None:
    rng = random.Random(seed)
    for host in ("h1", "h2", "h3"):
        base = view(host, *model)
        expected = plan_host(base).render()
        assert plan_host(shuffled(base, rng)).render() == expected
        assert plan_host(shuffled(base, rng)) == plan_host(base)


@settings(max_examples=60, deadline=None)
@given(models=st.lists(models(), min_size=1, max_size=5))
def test_sequences_converge_forward_and_reversed(models: list[Model]) -> None:
    for sequence in (models, models[::-1]):
        kernel = fresh_kernel()
        for model in sequence:
            step(kernel, model)


@settings(max_examples=60, deadline=None)
@given(first=models(), second=models())
def test_apply_then_revert_restores_the_original_state(first: Model, second: Model) -> None:
    kernel = fresh_kernel()
    original = owned_view(step(kernel, first))
    step(kernel, second)
    assert owned_view(step(kernel, first)) == original


@settings(max_examples=30, deadline=None)
@given(models=st.lists(models(), min_size=1, max_size=4))
def test_squashed_sequence_ends_where_the_steps_end(models: list[Model]) -> None:
    stepped, squashed = fresh_kernel(), fresh_kernel()
    for model in models:
        step(stepped, model)
    step(squashed, models[-1])
    assert owned_view(stepped.observe()) == owned_view(squashed.observe())


def test_scenario_sequence_on_every_host() -> None:
    networks, ports = two_nets_three_hosts()
    mtu = [n.replace(mtu=1400) if n.id == NET_A else n for n in networks]
    vni = [n.replace(segmentation_id=3001) if n.id == NET_A else n for n in networks]
    migrated = [p.replace(binding_host_id="h3") if p.mac_address.endswith(":03") else p for p in ports]
    emptied = [p for p in ports if p.binding_host_id != "h1"]
    sequence: list[Model] = [
        ([], []),
        (networks, ports),
        (networks, migrated),
        (mtu, migrated),
        (vni, migrated),
        (vni, emptied),
        (networks, ports),
        ([], []),
    ]
    for host in HOSTS:
        kernel = fresh_kernel()
        for model in sequence:
            step(kernel, model, host)
        assert owned_view(kernel.observe()) == KernelState()
