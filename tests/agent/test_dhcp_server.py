"""agent/dhcp.py: the plan's leases become what the responder answers, on
the taps that exist, for the port's own MAC only."""

from __future__ import annotations

from collections.abc import Callable

from overcast.agent.dhcp import DhcpServer
from overcast.plan.leases import Lease
from overcast.services import dhcp


class FakeResponder:
    def __init__(self, lookup: Callable[[str, str], dhcp.PortConfig | None],
                 on_event: Callable[[object], None]) -> None:
        self.lookup, self.on_event = lookup, on_event
        self.open: set[str] = set()
        self.dead: set[str] = set()  # taps whose socket is on a device deleted since
        self.calls: list[str] = []

    def start(self) -> None: ...
    def stop(self) -> None: ...

    def attach(self, ifname: str) -> None:
        self.open.add(ifname)
        self.dead.discard(ifname)
        self.calls.append(f"attach {ifname}")

    def detach(self, ifname: str) -> None:
        self.open.discard(ifname)
        self.calls.append(f"detach {ifname}")

    def attached(self) -> frozenset[str]:
        return frozenset(self.open)

    def alive(self, ifname: str) -> bool:
        return ifname in self.open and ifname not in self.dead

    def booted(self, ifname: str, mac: str) -> bool:
        return False


def lease(n: int, **kw: object) -> Lease:
    base = dict(dev=f"tap{n}", port_id=f"p{n}", mac=f"fa:16:3e:00:00:{n:02x}", ip=f"10.0.0.{n}",
                prefixlen=24, server_ip="10.0.0.1", router="10.0.0.1", dns_servers=(),
                domain="example", host_name=f"vm{n}", mtu=1450)
    return Lease(**{**base, **kw})  # type: ignore[arg-type]


def server() -> tuple[DhcpServer, FakeResponder]:
    srv = DhcpServer(FakeResponder)
    assert isinstance(srv.responder, FakeResponder)
    return srv, srv.responder


def test_leases_of_present_taps_are_answered_for_their_own_mac() -> None:
    srv, resp = server()
    srv.update([lease(1), lease(2), lease(3)], frozenset({"tap1", "tap2"}))
    assert resp.open == {"tap1", "tap2"}
    config = resp.lookup("tap1", "FA:16:3E:00:00:01")
    assert config is not None and (config.ip, config.host_name, config.mtu) == ("10.0.0.1", "vm1", 1450)
    assert resp.lookup("tap1", "fa:16:3e:00:00:02") is None  # another port's MAC on this tap
    assert resp.lookup("tap3", "fa:16:3e:00:00:03") is None  # its tap is not there yet


def test_a_lease_gone_closes_its_tap_and_a_tap_made_again_is_opened_again() -> None:
    taps = frozenset({"tap1", "tap2"})
    srv, resp = server()
    srv.update([lease(1), lease(2)], taps)
    resp.calls.clear()
    srv.update([lease(1), lease(2)], taps)
    assert resp.calls == []  # nothing changed: nothing reopened
    resp.dead.add("tap1")  # deleted and made again under the same name
    srv.update([lease(1)], taps)
    assert resp.calls == ["detach tap2", "detach tap1", "attach tap1"]
    assert resp.lookup("tap2", "fa:16:3e:00:00:02") is None


def test_a_lease_the_server_cannot_encode_is_a_problem_not_a_crash() -> None:
    srv, resp = server()
    srv.update([lease(1, extra=(("no-such-option", "x"),)), lease(2)], frozenset({"tap1", "tap2"}))
    assert set(srv.problems) == {"p1"} and "no-such-option" in srv.problems["p1"]
    assert resp.open == {"tap2"}


def test_a_port_named_while_running_is_told_as_booted() -> None:
    told: list[tuple[str, str]] = []
    srv = DhcpServer(FakeResponder, on_boot=lambda p, k: told.append((p, k)))
    assert isinstance(srv.responder, FakeResponder)
    srv.update([lease(1)], frozenset({"tap1"}))
    srv.responder.booted = lambda ifname, mac: True  # type: ignore[method-assign]
    srv.update([lease(1, public=True)], frozenset({"tap1"}))
    assert told == [("p1", "request")]
    srv.update([lease(1, public=True)], frozenset({"tap1"}))
    assert told == [("p1", "request")]  # once
