"""Real DHCPv6 clients against the responder: ISC ``dhclient -6`` and
dhcpcd, each in its own "VM" namespace on a veth whose host end, in this
namespace, the responder is attached to; stateful (the port's address) and
stateless (DNS servers and domain list only).

Every client runs with state of its own (lease, pid and DUID files in a
temporary directory; dhcpcd with tmpfs over its compiled-in directories in
the mount namespace ``ip netns exec`` makes for it), and a script of ours
that records what it was given (in one test it then hands over to Debian's
dhclient-script, which configures eth0).  DAD is off in the VMs
(``accept_dad`` 0), so eth0's link-local address, the clients' source, is
usable at once.
Every wait is bounded and waits on something observable (a record the
script wrote, an event, the client's exit).  Namespaces ``ocx-d6-<run>-vm<n>``,
veths ``ocxd6<run><n>``: removed at the end, as are the clients, by process group.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import signal
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from overcast.linux.dhcpv6_responder import Event, Responder, server_address
from overcast.services import dhcpv6

from .conftest import namespaces

pytestmark = pytest.mark.root

RUN = f"{os.getpid() % 1000:03d}{uuid.uuid4().hex[:2]}"
SERVER_MAC = "fa:16:3e:66:00:02"
WAIT = 10.0  # seconds: the bound on any one wait

SCRIPT = """#!/bin/sh
# records what the client was given, one block per call; then, when asked, lets the
# client's own script configure eth0 (inside the VM's namespace)
{ echo "event=$reason"; env; echo "--end--"; } >> "@RECORD@"
[ -z "@THEN@" ] || exec @THEN@
exit 0
"""

DHCLIENT_CONF = """
request dhcp6.name-servers, dhcp6.domain-search;
timeout 8;
retry 1;
"""

DHCPCD_CONF = """
duid
ipv6only
noipv6rs
release
option dhcp6_name_servers, dhcp6_domain_search
"""  # no router advertisements here: DHCPv6 is started by ia_na or --inform6, not by an RA


def config(mac: str, *addresses: str, **changes: object) -> dhcpv6.Port6Config:
    base = dhcpv6.Port6Config(mac=mac, server_mac=SERVER_MAC, addresses=addresses,
                              dns_servers=("2001:db8:66::2", "2001:db8:66::3"),
                              domain_search=("cloud.example", "example.org"))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


class Ports:
    """The lookup table the responder asks, and the events it reports."""

    def __init__(self) -> None:
        self.table: dict[tuple[str, str], tuple[dhcpv6.Port6Config, bool]] = {}
        self.events: list[Event] = []
        self._cond = threading.Condition()

    def lookup(self, ifname: str, mac: str) -> tuple[dhcpv6.Port6Config, bool] | None:
        return self.table.get((ifname, mac))

    def on_event(self, event: Event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_event(self, kind: str, mac: str) -> Event:
        with self._cond:
            found = self._cond.wait_for(
                lambda: next((e for e in self.events if (e.kind, e.mac) == (kind, mac)), None), WAIT)
        assert found is not None, f"no {kind} event from {mac} within {WAIT} s: {self.events}"
        return found


@dataclasses.dataclass
class Vm:
    ns: str
    ifname: str  # host end, here
    mac: str
    dir: Path
    procs: list[subprocess.Popen[bytes]] = dataclasses.field(default_factory=list)

    def script(self, then: str = "") -> str:
        """Our client script; ``then``: the script it hands over to after recording."""
        path = self.dir / "script"
        path.write_text(SCRIPT.replace("@RECORD@", str(self.dir / "record")).replace("@THEN@", then))
        path.chmod(0o755)
        return str(path)

    def run(self, *argv: str) -> subprocess.Popen[bytes]:
        """Run ``argv`` in the VM (``ip netns exec`` execs it: same PID), leading
        its own process group."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns, *argv],
                                env={"PATH": os.environ["PATH"]}, cwd=self.dir,
                                stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr", "ab"),
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def records(self) -> list[dict[str, str]]:
        """The script's records, complete ones only (it may be writing one now)."""
        path = self.dir / "record"
        blocks = path.read_text().split("--end--\n")[:-1] if path.exists() else []
        return [dict(line.split("=", 1) for line in b.splitlines() if "=" in line) for b in blocks]

    def wait_record(self, *events: str, after: int = 0) -> dict[str, str]:
        """The first record past the first ``after`` whose event is one of ``events``."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            found = [r for r in self.records()[after:] if r.get("event") in events]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no {events} from the client in {self.ns} within {WAIT} s: "
                             f"{[r.get('event') for r in self.records()]}; "
                             f"stderr: {(self.dir / 'stderr').read_text()[-2000:]}")

    def wait_for(self, matches: Callable[[dict[str, str]], bool]) -> dict[str, str]:
        """The first record that ``matches``."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            found = [r for r in self.records() if matches(r)]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no such record from the client in {self.ns} within {WAIT} s: "
                             f"{self.records()}; stderr: {(self.dir / 'stderr').read_text()[-2000:]}")

    def global_addresses(self) -> list[str]:
        out = subprocess.run(["ip", "-n", self.ns, "-6", "-o", "addr", "show", "dev", "eth0",
                              "scope", "global"], capture_output=True, text=True, check=True).stdout
        return [line.split()[3] for line in out.splitlines()]

    def addresses(self) -> str:
        return subprocess.run(["ip", "-n", self.ns, "-6", "-o", "addr", "show", "dev", "eth0"],
                              capture_output=True, text=True, check=True).stdout

    def stop(self) -> None:
        """Stop the clients still running, and what they started, by their
        process group (each leads its own: the group id is its PID)."""
        for proc in self.procs:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    continue


@pytest.fixture
def ports() -> Ports:
    return Ports()


@pytest.fixture
def responder(ports: Ports) -> Iterator[Responder]:
    server = Responder(ports.lookup, ports.on_event)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        assert not [t for t in threading.enumerate() if t.name == "dhcpv6-responder"]


@pytest.fixture
def vms(responder: Responder, tmp_path: Path) -> Iterator[list[Vm]]:
    """Two VMs, each on a veth attached to the responder, IPv6 on, no DAD."""
    made: list[Vm] = []
    with ExitStack() as stack:
        make = stack.enter_context(namespaces(f"ocx-d6-{RUN}"))
        for n in range(2):
            ns, ifname, mac = make(f"vm{n}"), f"ocxd6{RUN}{n}", f"fa:16:3e:66:10:{n:02x}"
            for key in ("all", "default"):  # before eth0 exists: it inherits "default"
                subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw",
                                f"net.ipv6.conf.{key}.accept_dad=0"], check=True)
            subprocess.run(["ip", "link", "add", ifname, "type", "veth", "peer", "name", "eth0",
                            "netns", ns], check=True)
            stack.callback(subprocess.run, ["ip", "link", "del", ifname], capture_output=True)
            # the host end is only the responder's: no IPv6 stack of this namespace on it
            subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{ifname}.disable_ipv6=1"], check=True)
            subprocess.run(["ip", "link", "set", ifname, "up"], check=True)
            for cmd in (["link", "set", "eth0", "address", mac, "up"], ["link", "set", "lo", "up"]):
                subprocess.run(["ip", "-n", ns, *cmd], check=True)
            (tmp_path / f"vm{n}").mkdir()
            made.append(Vm(ns, ifname, mac, tmp_path / f"vm{n}"))
            responder.attach(ifname)
        try:
            yield made
        finally:
            for vm in made:
                vm.stop()


def dhclient_files(vm: Vm, then: str = "") -> list[str]:
    (vm.dir / "dhclient.conf").write_text(DHCLIENT_CONF)
    return ["-6", "-cf", str(vm.dir / "dhclient.conf"), "-lf", str(vm.dir / "leases"),
            "-pf", str(vm.dir / "pid"), "-sf", vm.script(then)]


def dhcpcd(vm: Vm, *flags: str) -> subprocess.Popen[bytes]:
    """dhcpcd in the foreground with private run and database directories
    (compiled in: tmpfs over them, in the mount namespace of this client alone)."""
    (vm.dir / "dhcpcd.conf").write_text(DHCPCD_CONF)
    command = (f"exec dhcpcd -B -6 -t 8 -f {vm.dir}/dhcpcd.conf -c {vm.script()} "
               f"{' '.join(flags)} eth0")
    return vm.run("sh", "-c", "mount -t tmpfs ocx-d6 /run && mount -t tmpfs ocx-d6 /var/lib/dhcpcd"
                  f" && {command}")


def test_dhclient_stateful_gets_the_address_renews_and_releases(vms: list[Vm], ports: Ports) -> None:
    vm = vms[0]
    ports.table[(vm.ifname, vm.mac)] = (config(vm.mac, "2001:db8:66::10", t1=2, t2=3), True)
    files = dhclient_files(vm)
    vm.run("dhclient", "-d", "-v", *files, "eth0")
    bound = vm.wait_record("BOUND6")
    assert bound["new_ip6_address"] == "2001:db8:66::10"
    assert (bound["new_preferred_life"], bound["new_max_life"]) == ("14400", "86400")
    assert bound["new_dhcp6_name_servers"] == "2001:db8:66::2 2001:db8:66::3"
    assert bound["new_dhcp6_domain_search"] == "cloud.example. example.org."
    # dhclient prints the DUID's bytes in hex without leading zeros (0:3:0:1:fa:...)
    server_id = bytes(int(b, 16) for b in bound["new_dhcp6_server_id"].split(":"))
    assert server_id == config(vm.mac).server_duid
    assert ports.wait_event("solicit", vm.mac).addresses == ("2001:db8:66::10",)
    assert vm.wait_record("RENEW6")["new_ip6_address"] == "2001:db8:66::10"  # at T1, 2 s
    release = vm.run("dhclient", "-r", "-v", *files, "eth0")
    assert release.wait(timeout=WAIT) == 0
    assert ports.wait_event("release", vm.mac).addresses == ("2001:db8:66::10",)


def test_dhclient_after_an_address_change_gets_the_new_one(vms: list[Vm], ports: Ports) -> None:
    vm = vms[0]
    ports.table[(vm.ifname, vm.mac)] = (config(vm.mac, "2001:db8:66::11", t1=2, t2=3), True)
    # Debian's dhclient-script configures eth0, as in a VM
    vm.run("dhclient", "-d", "-v", *dhclient_files(vm, then="/sbin/dhclient-script"), "eth0")
    assert vm.wait_record("BOUND6")["new_ip6_address"] == "2001:db8:66::11"
    wait_until(lambda: vm.global_addresses() == ["2001:db8:66::11/128"], "eth0 has ::11")
    ports.table[(vm.ifname, vm.mac)] = (config(vm.mac, "2001:db8:66::12", t1=2, t2=3), True)
    # the renewal at T1 gets the new address and the old one at lifetimes 0
    renewed = vm.wait_for(lambda r: r.get("new_ip6_address") == "2001:db8:66::12")
    assert renewed["event"] == "RENEW6"
    wait_until(lambda: vm.global_addresses() == ["2001:db8:66::12/128"], "eth0 has ::12 only")
    log = (vm.dir / "stderr").read_text()
    assert "XMT: Solicit" not in log[log.index("XMT: Renew on eth0"):]  # no starting over


def test_dhclient_restarted_after_an_address_change_is_not_on_link(vms: list[Vm], ports: Ports) -> None:
    vm = vms[0]
    ports.table[(vm.ifname, vm.mac)] = (config(vm.mac, "2001:db8:66::13"), True)
    files = dhclient_files(vm)
    first = vm.run("dhclient", "-d", "-v", *files, "eth0")
    assert vm.wait_record("BOUND6")["new_ip6_address"] == "2001:db8:66::13"
    os.killpg(first.pid, signal.SIGKILL)  # the VM stops: no release, the lease file stays
    first.wait(timeout=WAIT)
    ports.table[(vm.ifname, vm.mac)] = (config(vm.mac, "2001:db8:66::14"), True)
    count = len(vm.records())
    vm.run("dhclient", "-d", "-v", *files, "eth0")  # it confirms the lease it has: NotOnLink
    assert vm.wait_record("BOUND6", after=count)["new_ip6_address"] == "2001:db8:66::14"
    log = (vm.dir / "stderr").read_text()
    after = log[log.index("XMT: Confirm on eth0"):]
    assert 'status code NotOnLink: "not on link' in after
    assert "XMT: Solicit on eth0" in after  # refused, it started over


def test_dhclient_stateless_gets_dns_and_domains(vms: list[Vm], ports: Ports) -> None:
    vm = vms[1]
    ports.table[(vm.ifname, vm.mac)] = (config(vm.mac), False)
    proc = vm.run("dhclient", "-d", "-1", "-S", "-v", *dhclient_files(vm), "eth0")
    info = vm.wait_record("RENEW6")  # what dhclient -S calls the information it got
    assert info["new_dhcp6_name_servers"] == "2001:db8:66::2 2001:db8:66::3"
    assert info["new_dhcp6_domain_search"] == "cloud.example. example.org."
    assert "new_ip6_address" not in info
    assert ports.wait_event("information-request", vm.mac).addresses == ()
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=WAIT)


def test_dhcpcd_stateful_gets_the_address_and_releases(vms: list[Vm], ports: Ports) -> None:
    vm = vms[1]
    ports.table[(vm.ifname, vm.mac)] = (config(vm.mac, "2001:db8:66::20"), True)
    proc = dhcpcd(vm, "--ia_na=1")
    bound = vm.wait_record("BOUND6")
    assert bound["new_dhcp6_ia_na1_ia_addr1"] == "2001:db8:66::20"
    assert bound["new_dhcp6_name_servers"] == "2001:db8:66::2 2001:db8:66::3"
    assert bound["new_dhcp6_domain_search"] == "cloud.example example.org"
    assert "2001:db8:66::20/128" in vm.addresses()  # dhcpcd configures eth0 itself
    assert ports.wait_event("solicit", vm.mac).addresses == ("2001:db8:66::20",)
    os.killpg(proc.pid, signal.SIGTERM)  # "release" in its config: released before it stops
    proc.wait(timeout=WAIT)
    assert ports.wait_event("release", vm.mac).addresses == ("2001:db8:66::20",)


def test_dhcpcd_after_an_address_change_gets_the_new_one(vms: list[Vm], ports: Ports) -> None:
    vm = vms[1]
    ports.table[(vm.ifname, vm.mac)] = (config(vm.mac, "2001:db8:66::21", t1=2, t2=3), True)
    dhcpcd(vm, "--ia_na=1")
    assert vm.wait_record("BOUND6")["new_dhcp6_ia_na1_ia_addr1"] == "2001:db8:66::21"
    ports.table[(vm.ifname, vm.mac)] = (config(vm.mac, "2001:db8:66::22", t1=2, t2=3), True)
    # the renewal at T1 gets the new address and the old one at lifetimes 0
    renewed = vm.wait_for(lambda r: r.get("new_dhcp6_ia_na1_ia_addr1") == "2001:db8:66::22")
    assert renewed["event"] == "RENEW6"
    wait_until(lambda: vm.global_addresses() == ["2001:db8:66::22/128"], "eth0 has ::22 only")
    assert "deleting address 2001:db8:66::21/128" in (vm.dir / "stderr").read_text()


def test_dhcpcd_stateless_gets_dns_and_domains(vms: list[Vm], ports: Ports) -> None:
    vm = vms[0]
    ports.table[(vm.ifname, vm.mac)] = (config(vm.mac), False)
    dhcpcd(vm, "--inform6")
    info = vm.wait_record("INFORM6")
    assert info["new_dhcp6_name_servers"] == "2001:db8:66::2 2001:db8:66::3"
    assert info["new_dhcp6_domain_search"] == "cloud.example example.org"


def test_a_mac_the_lookup_does_not_know_gets_no_answer(vms: list[Vm], ports: Ports) -> None:
    vm = vms[0]
    ports.table[(vm.ifname, "fa:16:3e:66:99:99")] = (config("fa:16:3e:66:99:99", "2001:db8:66::40"),
                                                     True)
    (vm.dir / "dhclient.conf").write_text(DHCLIENT_CONF.replace("timeout 8", "timeout 3"))
    files = ["-6", "-cf", str(vm.dir / "dhclient.conf"), "-lf", str(vm.dir / "leases"),
             "-pf", str(vm.dir / "pid"), "-sf", vm.script()]
    proc = vm.run("dhclient", "-d", "-1", "-v", *files, "eth0")  # -1: gives up at the timeout
    assert proc.wait(timeout=WAIT) != 0
    assert not [r for r in vm.records() if r.get("event") == "BOUND6"]
    assert "Solicit" in (vm.dir / "stderr").read_text()  # it did ask
    assert not ports.events


def test_garbage_and_a_vanished_interface_do_not_stop_the_responder(
        vms: list[Vm], ports: Ports, responder: Responder, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="overcast.linux.dhcpv6_responder")
    vm, gone = vms
    ports.table[(vm.ifname, vm.mac)] = (config(vm.mac, "2001:db8:66::50"), True)
    client = (dhcpv6.CLIENTID, dhcpv6.duid_ll(vm.mac))
    valid = dhcpv6.build(dhcpv6.SOLICIT, 7, [client, dhcpv6.ia_na(1)])
    decline = dhcpv6.build(dhcpv6.DECLINE, 8, [client, (dhcpv6.SERVERID, config(vm.mac).server_duid),
                                               dhcpv6.ia_na(1, ("2001:db8:66::50",))])
    frames = [udp6_frame(vm.mac, payload) for payload in (
        b"", b"\x01\x00", bytes(range(256)) * 2, valid + b"\x00\x01\x00\x09", b"\x0c" + bytes(40))]
    inform = dhcpv6.build(dhcpv6.INFORMATION_REQUEST, 9, [client])
    frames += [udp6_frame(vm.mac, valid)[:60], udp6_frame(vm.mac, valid)[:-10],  # cut short
               udp6_frame(vm.mac, inform, to="fe80::99"),  # for a server that is not us
               udp6_frame(vm.mac, decline)]  # and one good message among them
    sender = vm.run("python3", "-c", _SEND_FRAMES, *(f.hex() for f in frames))
    assert sender.wait(timeout=WAIT) == 0
    assert ports.wait_event("decline", vm.mac).addresses == ("2001:db8:66::50",)
    assert [e.kind for e in ports.events] == ["decline"]  # read in order: nothing before it
    subprocess.run(["ip", "link", "del", gone.ifname], check=True)
    vm.run("dhclient", "-d", "-v", *dhclient_files(vm), "eth0")
    assert vm.wait_record("BOUND6")["new_ip6_address"] == "2001:db8:66::50"
    wait_until(lambda: responder.attached() == {vm.ifname}, "the vanished interface detached")
    logged = caplog.text  # the frames reached the parser and were refused there
    for why in ("shorter than its 4-byte header", "claims 9 bytes", "relayed messages",
                "for fe80::99, another server",
                f"DHCPv6 on {gone.ifname} stops"):
        assert why in logged


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {WAIT} s"
        time.sleep(0.05)


def udp6_frame(src_mac: str, payload: bytes, to: str = "ff02::1:2") -> bytes:
    """A frame from fe80::1 port 546 to ``to`` port 547 (checksum left 0)."""
    udp = struct.pack("!HHHH", 546, 547, 8 + len(payload), 0) + payload
    ip6 = struct.pack("!IHBB", 6 << 28, len(udp), 17, 1)
    ip6 += ipaddress.IPv6Address("fe80::1").packed + ipaddress.IPv6Address(to).packed
    return b"\x33\x33\x00\x01\x00\x02" + bytes.fromhex(src_mac.replace(":", "")) + b"\x86\xdd" + ip6 + udp


def test_server_address_is_the_eui64_link_local() -> None:
    assert server_address(SERVER_MAC) == "fe80::f816:3eff:fe66:2"


# sends each hex argument as a raw Ethernet frame out of the VM's eth0
_SEND_FRAMES = """
import socket, sys
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
raw.bind(("eth0", 0))
for text in sys.argv[1:]:
    raw.send(bytes.fromhex(text))
"""
