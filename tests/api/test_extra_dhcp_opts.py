"""Neutron's extra_dhcp_opt extension on ports: stored, shown, merged on
update, a null value removes an option, and a value the DHCP server could
not encode is a 400 naming the entry."""

from __future__ import annotations

from typing import Any

from .helpers import Direct, assert_error


def opts(port: dict[str, Any]) -> list[tuple[str, str, int]]:
    return sorted((o["opt_name"], o["opt_value"], o["ip_version"]) for o in port["extra_dhcp_opts"])


def test_options_are_stored_shown_and_merged(client: Direct, net: dict[str, Any],
                                             subnet: dict[str, Any]) -> None:
    port = client.port(net["id"], extra_dhcp_opts=[
        {"opt_name": "tftp-server", "opt_value": "10.0.0.9"},
        {"opt_name": "bootfile-name", "opt_value": "pxelinux.0"},
        {"opt_name": "150", "opt_value": "10.0.0.8", "ip_version": 4}])
    assert opts(port) == [("150", "10.0.0.8", 4), ("bootfile-name", "pxelinux.0", 4),
                          ("tftp-server", "10.0.0.9", 4)]
    assert "extra_dhcp_opt" in {e["alias"] for e in client.get("/v2.0/extensions").body["extensions"]}
    # an update names what it changes; a null value removes that option; the rest stays
    r = client.put(f"/v2.0/ports/{port['id']}", {"port": {"extra_dhcp_opts": [
        {"opt_name": "tftp-server", "opt_value": "10.0.0.7"},
        {"opt_name": "bootfile-name", "opt_value": None}]}})
    assert r.status == 200, r.body
    assert opts(r.body["port"]) == [("150", "10.0.0.8", 4), ("tftp-server", "10.0.0.7", 4)]
    assert opts(client.get(f"/v2.0/ports/{port['id']}").body["port"]) == opts(r.body["port"])


def test_an_option_the_server_cannot_encode_is_refused(client: Direct, net: dict[str, Any],
                                                       subnet: dict[str, Any],
                                                       unchanged: Any) -> None:
    unchanged()
    r = client.post("/v2.0/ports", {"port": {"network_id": net["id"], "extra_dhcp_opts": [
        {"opt_name": "tftp-server", "opt_value": "10.0.0.9"},
        {"opt_name": "no-such-option", "opt_value": "x"}]}})
    assert_error(r, 400, "extra_dhcp_opts[1]", "no-such-option")
    r = client.post("/v2.0/ports", {"port": {"network_id": net["id"], "extra_dhcp_opts": [
        {"opt_name": "mtu", "opt_value": "jumbo"}]}})
    assert_error(r, 400, "extra_dhcp_opts[0]", "jumbo")
    r = client.post("/v2.0/ports", {"port": {"network_id": net["id"], "extra_dhcp_opts": [
        {"opt_value": "1"}]}})
    assert_error(r, 400, "opt_name")
    r = client.post("/v2.0/ports", {"port": {"network_id": net["id"], "extra_dhcp_opts": [
        {"opt_name": "tftp-server"}]}})  # Neutron requires the value (null removes)
    assert_error(r, 400, "opt_value")
