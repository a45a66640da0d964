"""Flat provider networks in the API, as Neutron's flat type driver: a
physical network and no segment, one flat network per physical network."""

from __future__ import annotations

from .helpers import Direct, Reply, assert_error


def flat(client: Direct, physnet: str | None = "external", extra: dict[str, object] | None = None
         ) -> Reply:
    body: dict[str, object] = {"name": "ext", "provider:network_type": "flat", **(extra or {})}
    if physnet is not None:
        body["provider:physical_network"] = physnet
    return client.post("/v2.0/networks", {"network": body})


def test_a_flat_network_names_its_physical_network_and_takes_no_segment(client: Direct) -> None:
    r = flat(client, extra={"router:external": True})
    assert r.status == 201, r.body
    net = r.body["network"]
    assert (net["provider:network_type"], net["provider:physical_network"],
            net["provider:segmentation_id"], net["router:external"]) == ("flat", "external", None, True)
    assert net["mtu"] == 1500  # no encapsulation: the underlay's MTU


def test_flat_without_a_physical_network_or_with_a_segment_is_refused(client: Direct) -> None:
    before = client.get("/v2.0/networks").body
    assert_error(flat(client, None), 400, "physical_network required for flat provider network")
    assert_error(flat(client, extra={"provider:segmentation_id": 5}), 400,
                 "segmentation_id specified for flat provider network")
    r = client.post("/v2.0/networks", {"network": {"provider:network_type": "vxlan",
                                                   "provider:physical_network": "external"}})
    assert_error(r, 400, "provider:physical_network specified for vxlan network")
    assert client.get("/v2.0/networks").body == before  # nothing written


def test_one_flat_network_per_physical_network(client: Direct) -> None:
    assert flat(client).status == 201
    assert_error(flat(client), 409, "Physical network external is in use", type="FlatNetworkInUse")
    assert flat(client, "physnet2").status == 201
