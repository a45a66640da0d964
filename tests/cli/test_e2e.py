"""End to end: the real API (the suite's ``api_url`` fixture, and once
``overcast server`` started through the CLI's own pass-through on a fresh
SQLite store) driven by ``overcast`` commands."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from overcast.cli.main import main

from .server import free_port, running_server

pytestmark = pytest.mark.slow


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    args = ["--bind", f"127.0.0.1:{port}", "--store", f"sqlite://{tmp_path / 'overcast.db'}"]
    with running_server(args, port, tmp_path / "server.log") as url:
        yield url


class Cli:
    def __init__(self, url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.url, self.capsys = url, capsys

    def __call__(self, *argv: str) -> str:
        """Run a command that must succeed; its stdout."""
        self.capsys.readouterr()
        code = main(["--os-url", self.url, *argv])
        out, err = self.capsys.readouterr()
        assert code == 0, f"overcast {' '.join(argv)}: exit {code}: {err}"
        return out

    def json(self, *argv: str) -> Any:
        return json.loads(self(*argv, "-f", "json"))

    def fails(self, *argv: str) -> str:
        self.capsys.readouterr()
        code = main(["--os-url", self.url, *argv])
        out, err = self.capsys.readouterr()
        assert code == 1, f"overcast {' '.join(argv)} should fail: {out}"
        assert "Traceback" not in err
        return err


@pytest.fixture
def cli(api_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(api_url, capsys)


def test_overcast_server_serves_the_cli(server_url: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    cli = Cli(server_url, capsys)
    net = cli.json("network", "create", "blue", "--tag", "lab")
    assert cli("network", "list", "--tag", "lab", "-f", "value", "-c", "ID").split() == [net["id"]]


def test_tenant_network_scenario(cli: Cli) -> None:
    net = cli.json("network", "create", "blue", "--description", "tenant net")
    assert net["name"] == "blue" and net["provider:network_type"] == "vxlan"
    subnet = cli.json("subnet", "create", "blue-v4", "--network", "blue",
                      "--subnet-range", "10.0.0.0/24",
                      "--allocation-pool", "start=10.0.0.10,end=10.0.0.99",
                      "--dns-nameserver", "10.0.0.2")
    assert subnet["network_id"] == net["id"]
    assert subnet["allocation_pools"] == [{"start": "10.0.0.10", "end": "10.0.0.99"}]
    assert subnet["dns_nameservers"] == ["10.0.0.2"] and subnet["gateway_ip"] == "10.0.0.1"

    port = cli.json("port", "create", "vm1-eth0", "--network", "blue",
                    "--fixed-ip", "subnet=blue-v4,ip-address=10.0.0.20")
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.0.0.20"}]
    taken = cli.fails("port", "create", "vm2-eth0", "--network", "blue",
                      "--fixed-ip", "ip-address=10.0.0.20")
    assert "10.0.0.20" in taken and "(HTTP 409)" in taken

    cli("security", "group", "create", "web")
    rule = cli.json("security", "group", "rule", "create", "web", "--protocol", "tcp",
                    "--dst-port", "80")
    assert (rule["protocol"], rule["port_range_min"], rule["port_range_max"]) == ("tcp", 80, 80)
    rules = cli.json("security", "group", "rule", "list", "web")
    assert any(r["ID"] == rule["id"] and r["Port Range"] == "80:80" for r in rules)

    cli("router", "create", "r1")
    cli("router", "add", "subnet", "r1", "blue-v4")
    router_ports = cli.json("port", "list", "--device-owner", "network:router_interface")
    assert [p["Fixed IP Addresses"] for p in router_ports] == [
        [{"subnet_id": subnet["id"], "ip_address": "10.0.0.1"}]]
    interfaces = cli.json("router", "show", "r1")["interfaces_info"]
    assert interfaces == [{"port_id": router_ports[0]["ID"], "ip_address": "10.0.0.1",
                           "subnet_id": subnet["id"]}]

    cli("port", "set", "vm1-eth0", "--security-group", "web", "--host", "hv1", "--tag", "x")
    shown = cli.json("port", "show", "vm1-eth0")
    assert shown["binding:host_id"] == "hv1" and shown["tags"] == ["x"]
    web = cli.json("security", "group", "show", "web")["id"]
    assert web in shown["security_groups"]
    cli("port", "unset", "vm1-eth0", "--security-group", "web", "--host", "--all-tag")
    shown = cli.json("port", "show", "vm1-eth0")
    assert web not in shown["security_groups"]
    assert (shown["binding:host_id"], shown["tags"]) == ("", [])
    cli("port", "set", "vm1-eth0", "--public-hostname", "www.cloud.example")
    shown = cli.json("port", "show", "vm1-eth0")
    assert shown["overcast:public_hostname"] == "www.cloud.example"
    assert shown["overcast:public_binding"] == {"hostname": "www.cloud.example", "address": None}
    cli("port", "unset", "vm1-eth0", "--public-hostname")
    assert cli.json("port", "show", "vm1-eth0")["overcast:public_binding"] is None

    networks = cli.json("network", "list")
    assert [(n["Name"], n["Subnets"]) for n in networks] == [("blue", [subnet["id"]])]

    cli("router", "remove", "subnet", "r1", "blue-v4")
    cli("router", "delete", "r1")
    cli("port", "delete", "vm1-eth0")
    cli("security", "group", "delete", "web")
    cli("subnet", "delete", "blue-v4")
    cli("network", "delete", "blue")
    assert cli.json("network", "list") == []
    assert "No network found for 'blue'" in cli.fails("network", "show", "blue")


def test_gateway_floating_ip_and_qos_scenario(cli: Cli) -> None:
    cli("network", "create", "public", "--external")
    cli("subnet", "create", "public-v4", "--network", "public", "--subnet-range",
        "203.0.113.0/24")
    cli("network", "create", "blue")
    cli("subnet", "create", "blue-v4", "--network", "blue", "--subnet-range", "10.0.0.0/24")
    port = cli.json("port", "create", "vm1-eth0", "--network", "blue")
    cli("router", "create", "r1")
    cli("router", "add", "subnet", "r1", "blue-v4")
    cli("router", "set", "r1", "--external-gateway", "public")
    router = cli.json("router", "show", "r1")
    assert router["external_gateway_info"]["network_id"] == cli.json(
        "network", "show", "public")["id"]

    fip = cli.json("floating", "ip", "create", "public", "--port", "vm1-eth0")
    address = fip["floating_ip_address"]
    assert fip["port_id"] == port["id"] and address.startswith("203.0.113.")
    assert cli("floating", "ip", "show", address, "-f", "value", "-c", "id").strip() == fip["id"]
    cli("floating", "ip", "unset", "--port", address)
    assert cli.json("floating", "ip", "show", address)["port_id"] is None
    cli("floating", "ip", "set", "--port", "vm1-eth0", address)
    listed = cli.json("floating", "ip", "list", "--port", "vm1-eth0")
    assert [f["Floating IP Address"] for f in listed] == [address]
    cli("floating", "ip", "delete", address)

    policy = cli.json("network", "qos", "policy", "create", "gold")
    rule = cli.json("network", "qos", "rule", "create", "--type", "bandwidth-limit",
                    "--max-kbps", "10000", "--max-burst-kbits", "1000", "gold")
    assert (rule["max_kbps"], rule["max_burst_kbps"]) == (10000, 1000)
    cli("port", "set", "vm1-eth0", "--qos-policy", "gold")
    assert cli.json("port", "show", "vm1-eth0")["qos_policy_id"] == policy["id"]
    cli("network", "qos", "rule", "set", "gold", rule["id"], "--max-kbps", "20000", "--ingress")
    rules = cli.json("network", "qos", "rule", "list", "gold")
    assert [(r["Max Kbps"], r["Direction"]) for r in rules] == [(20000, "ingress")]
    cli("network", "qos", "rule", "delete", "gold", rule["id"])
    assert cli.json("network", "qos", "rule", "list", "gold") == []

    cli("router", "unset", "--external-gateway", "r1")
    assert cli.json("router", "show", "r1")["external_gateway_info"] is None
    in_use = cli.fails("network", "delete", "blue")
    assert "1 of 1 networks failed to delete" in in_use


def test_token_mode(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from overcast.api import Api
    from overcast.api.auth import Auth, Context
    from overcast.api.embedded import EmbeddedServer
    from overcast.store import MemoryStore

    monkeypatch.delenv("OVERCAST_TOKEN", raising=False)
    auth = Auth({"s3cret-alice": Context("alice", is_admin=False)})
    with EmbeddedServer(Api(MemoryStore(), auth=auth)) as server:
        cli = Cli(server.url, capsys)
        err = cli.fails("network", "list")
        assert "Authentication required" in err and "(HTTP 401)" in err
        assert "not valid" in cli.fails("--os-token", "wrong", "network", "list")
        monkeypatch.setenv("OVERCAST_TOKEN", "s3cret-alice")
        assert cli.json("network", "create", "mine")["project_id"] == "alice"
