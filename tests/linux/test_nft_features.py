"""libnftables binding and feature detection against the real kernel."""

from __future__ import annotations

import subprocess

import pytest
from pyroute2 import netns

from overcast.linux.features import PROBES, detect_features
from overcast.linux.nft import Nftables, NftError

from .conftest import MakeNs, sh

pytestmark = pytest.mark.root

TABLE = {"family": "inet", "name": "overcast_test"}


def tables(nft: Nftables) -> list[str]:
    return [item["table"]["name"] for item in nft.list_ruleset()["nftables"] if "table" in item]


def test_create_and_delete_an_owned_table_in_a_namespace(make_ns: MakeNs) -> None:
    ns = make_ns("nft")
    with Nftables(netns=ns) as nft:
        nft.json_cmd({"nftables": [
            {"add": {"table": {**TABLE, "comment": "overcast"}}},
            {"add": {"chain": {"family": "inet", "table": "overcast_test", "name": "in", "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}}},
        ]})
        assert "overcast_test" in tables(nft)
        assert "table inet overcast_test" in sh(ns, "nft", "list", "ruleset").stdout  # the kernel agrees
        nft.json_cmd({"nftables": [{"delete": {"table": TABLE}}]})
        assert "overcast_test" not in tables(nft)
    assert "overcast_test" not in sh(ns, "nft", "list", "ruleset").stdout


def test_context_stays_in_its_namespace(make_ns: MakeNs) -> None:
    ns = make_ns("nft2")
    with Nftables(netns=ns) as nft:
        nft.json_cmd({"nftables": [{"add": {"table": TABLE}}]})
    root = subprocess.run(["nft", "-j", "list", "tables"], capture_output=True, text=True, check=True).stdout
    assert '"name": "overcast_test"' not in root and '"name":"overcast_test"' not in root


def test_errors_carry_libnftables_message(make_ns: MakeNs) -> None:
    ns = make_ns("nft3")
    with Nftables(netns=ns) as nft, pytest.raises(NftError, match="No such file or directory"):
        nft.json_cmd({"nftables": [{"delete": {"table": {"family": "inet", "name": "absent"}}}]})


def test_feature_report_finds_what_the_data_plane_needs() -> None:
    report = detect_features()
    for name in ("bridge", "vxlan", "veth", "nftables", "tc_htb"):
        assert report.available(name), report.render()
    assert {f.name for f in report.features} == {p[0] for p in PROBES}
    for f in report.missing():
        assert f.detail and f.disables
        assert f"{f.name}: MISSING" in report.render()
    assert not [n for n in netns.listnetns() if n.startswith("oc-probe-")]


def test_a_failing_probe_is_reported_by_name_with_what_it_disables() -> None:
    def broken(ipr: object, ns: str) -> None:
        raise OSError(95, "Operation not supported")

    report = detect_features((("warp_drive", "faster-than-light overlays", broken),))
    (feature,) = report.missing()
    assert (feature.name, feature.disables, feature.detail) == (
        "warp_drive", "faster-than-light overlays", "errno 95: Operation not supported")
    assert report.to_dict()["warp_drive"]["available"] is False
