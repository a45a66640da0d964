"""Model scenarios shared by the plan tests (plain data, no I/O)."""

from __future__ import annotations

from dataclasses import replace

from overcast.model.types import AddressPair, Network, Port
from overcast.plan import HostView

HOSTS = {"h1": "198.18.0.1", "h2": "198.18.0.2", "h3": "198.18.0.3"}
NET_A = "aaaaaaaa-1111-4111-8111-000000000001"
NET_B = "bbbbbbbb-2222-4222-8222-000000000002"
NET_L = "cccccccc-3333-4333-8333-000000000003"
NET_F = "dddddddd-4444-4444-8444-000000000004"


def net(id_: str, vni: int | None = None, mtu: int = 1450, type_: str = "vxlan") -> Network:
    return Network(id=id_, network_type=type_, segmentation_id=vni, mtu=mtu)


def port(n: int, network_id: str, host: str, **kw: object) -> Port:
    pid = f"{n:08x}-0000-4000-8000-{n:012x}"
    mac = f"fa:16:3e:00:00:{n:02x}"
    return Port(id=pid, network_id=network_id, mac_address=mac, binding_host_id=host, **kw)  # type: ignore[arg-type]


def two_nets_three_hosts() -> tuple[list[Network], list[Port]]:
    """A on h1+h2 (+ an allowed MAC pair on h2), B on h2+h3, L (local) on h1,
    F (flat on physical network "external", which h3 does not map) on h3, one unbound port."""
    flat = replace(net(NET_F, type_="flat", mtu=1500), physical_network="external")
    networks = [net(NET_A, 1001), net(NET_B, 1002, mtu=1400), net(NET_L, type_="local"), flat]
    pair = AddressPair(ip_address="10.0.0.99", mac_address="FA:16:3E:AA:BB:CC")
    ports = [
        port(1, NET_A, "h1"),
        port(2, NET_A, "h1", admin_state_up=False),
        port(3, NET_A, "h2", allowed_address_pairs=(pair,)),
        port(4, NET_B, "h2"),
        port(5, NET_B, "h3"),
        port(6, NET_B, "h3"),
        port(7, NET_L, "h1"),
        port(8, NET_F, "h3"),
        port(9, NET_A, ""),
    ]
    return networks, ports


def view(host: str, networks: list[Network], ports: list[Port], hosts: dict[str, str] = HOSTS) -> HostView:
    return HostView(host, hosts.get(host, ""), dict(hosts), list(networks), list(ports))
