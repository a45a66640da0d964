"""Real DHCP clients against the responder: busybox udhcpc, ISC dhclient and
dhcpcd, each in its own "VM" namespace on a veth whose host end, in this
namespace, the responder is attached to.

Every client runs with state of its own (lease, pid and config files in a
temporary directory, a script of ours that only records what it was given
and configures the VM's eth0 inside the VM namespace); every wait is
bounded and waits on something observable (a line the script wrote, an
event, the client's exit).  Namespaces ``ocx-dh-<run>-<role>``, veths
``ocxdh<run><n>``: removed at the end, as are the clients, by PID.
"""

from __future__ import annotations

import dataclasses
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

from overcast.linux.dhcp_responder import Event, Responder
from overcast.services import dhcp

from .conftest import namespaces

pytestmark = pytest.mark.root

RUN = f"{os.getpid() % 1000:03d}{uuid.uuid4().hex[:2]}"
SERVER_IP, SERVER_MAC = "10.77.0.2", "fa:16:3e:77:00:02"
WAIT = 10.0  # seconds: the bound on any one wait

SCRIPT = """#!/bin/sh
# records what the client was given, one block per call; configures eth0 in the VM
# for udhcpc ($1: bound, renew, ...) and dhclient ($reason: BOUND, RENEW, ...)
{ echo "event=${1:-$reason}"; env; echo "--end--"; } >> "@RECORD@"
[ -n "@CONFIGURE@" ] || exit 0
case "${1:-$reason}" in
  bound|renew) ip addr replace "$ip/$mask" dev "$interface" ;;
  BOUND|RENEW|REBIND|REBOOT) ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
  deconfig|EXPIRE|RELEASE|STOP) ip addr flush dev "$interface" ;;
esac
# removing the last address flushed the neighbours: the server's MAC again
ip neigh replace @SERVER_IP@ lladdr @SERVER_MAC@ dev eth0
exit 0
"""

DHCLIENT_CONF = """
option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers, host-name,
        interface-mtu, rfc3442-classless-static-routes;
timeout 8;
retry 1;
initial-interval 1;
"""

DHCPCD_CONF = """
duid
ipv4only
noarp
nodelay
noipv4ll
release
option domain_name_servers, domain_name, host_name, interface_mtu, classless_static_routes
option rapid_commit
require dhcp_server_identifier
"""  # Debian's defaults (duid, rapid_commit, server id required), quick and IPv4 only


def config(mac: str, ip: str, **changes: object) -> dhcp.PortConfig:
    base = dhcp.PortConfig(
        mac=mac, ip=ip, prefixlen=24, server_ip=SERVER_IP, server_mac=SERVER_MAC,
        router="10.77.0.1", dns_servers=("10.77.0.2", "10.77.0.3"), domain_name="cloud.example",
        host_name=f"vm-{ip.rsplit('.', 1)[1]}", mtu=1450, lease_time=600,
        routes=(("172.16.0.0/12", "10.77.0.254"),))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


class Ports:
    """The lookup table the responder asks, and the events it reports."""

    def __init__(self) -> None:
        self.table: dict[tuple[str, str], dhcp.PortConfig] = {}
        self.events: list[Event] = []
        self._cond = threading.Condition()

    def lookup(self, ifname: str, mac: str) -> dhcp.PortConfig | None:
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

    def script(self, configure: bool = True) -> str:
        """Our client script (clients run it with an environment of their own,
        so what it needs is written into it); ``configure``: it sets eth0's address."""
        path = self.dir / "script"
        path.write_text(SCRIPT.replace("@RECORD@", str(self.dir / "record"))
                        .replace("@CONFIGURE@", "1" if configure else "")
                        .replace("@SERVER_IP@", SERVER_IP).replace("@SERVER_MAC@", SERVER_MAC))
        path.chmod(0o755)
        return str(path)

    def run(self, *argv: str) -> subprocess.Popen[bytes]:
        """Run ``argv`` in the VM (``ip netns exec`` execs it: same PID)."""
        env = {"PATH": os.environ["PATH"]}
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns, *argv], env=env, cwd=self.dir,
                                stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr", "ab"),
                                start_new_session=True)  # its helpers (dhcpcd's) share its group
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

    def addresses(self) -> str:
        return subprocess.run(["ip", "-n", self.ns, "-4", "-o", "addr", "show", "dev", "eth0"],
                              capture_output=True, text=True, check=True).stdout

    def stop(self) -> None:
        """Stop the clients still running, and what they started, by their
        process group (each client leads its own: the group id is its PID)."""
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
        assert not [t for t in threading.enumerate() if t.name == "dhcp-responder"]


@pytest.fixture
def vms(responder: Responder, tmp_path: Path) -> Iterator[list[Vm]]:
    """``vms`` holds three VMs, each on a veth attached to the responder."""
    made: list[Vm] = []
    with ExitStack() as stack:
        make = stack.enter_context(namespaces(f"ocx-dh-{RUN}"))
        for n in range(3):
            ns, ifname, mac = make(f"vm{n}"), f"ocxdh{RUN}{n}", f"fa:16:3e:77:10:{n:02x}"
            subprocess.run(["ip", "link", "add", ifname, "type", "veth", "peer", "name", "eth0",
                            "netns", ns], check=True)
            stack.callback(subprocess.run, ["ip", "link", "del", ifname], capture_output=True)
            subprocess.run(["ip", "link", "set", ifname, "up"], check=True)
            # nothing answers ARP for the server's address here: the VM is told its MAC
            for cmd in (["link", "set", "eth0", "address", mac, "up"], ["link", "set", "lo", "up"],
                        ["neigh", "replace", SERVER_IP, "lladdr", SERVER_MAC, "dev", "eth0"]):
                subprocess.run(["ip", "-n", ns, *cmd], check=True)
            (tmp_path / f"vm{n}").mkdir()
            made.append(Vm(ns, ifname, mac, tmp_path / f"vm{n}"))
            responder.attach(ifname)
        try:
            yield made
        finally:
            for vm in made:
                vm.stop()


def udhcpc(vm: Vm, *flags: str) -> subprocess.Popen[bytes]:
    return vm.run("busybox", "udhcpc", "-f", "-i", "eth0", "-s", vm.script(),
                  "-O", "mtu", "-O", "staticroutes", "-O", "hostname", "-O", "domain",
                  "-t", "3", "-T", "1", "-A", "1", *flags)


def test_udhcpc_gets_the_whole_configuration(vms: list[Vm], ports: Ports) -> None:
    vm = vms[0]
    ports.table[(vm.ifname, vm.mac)] = config(vm.mac, "10.77.0.10")
    proc = udhcpc(vm, "-q", "-n")
    bound = vm.wait_record("bound")
    assert proc.wait(timeout=WAIT) == 0
    assert (bound["ip"], bound["mask"], bound["subnet"]) == ("10.77.0.10", "24", "255.255.255.0")
    assert (bound["router"], bound["dns"].split()) == ("10.77.0.1", ["10.77.0.2", "10.77.0.3"])
    assert (bound["hostname"], bound["domain"], bound["mtu"]) == ("vm-10", "cloud.example", "1450")
    assert bound["staticroutes"] == "172.16.0.0/12 10.77.0.254 0.0.0.0/0 10.77.0.1"
    assert (bound["serverid"], bound["lease"], bound["broadcast"]) == (SERVER_IP, "600", "10.77.0.255")
    assert "10.77.0.10/24" in vm.addresses()
    assert ports.wait_event("discover", vm.mac).ip == "10.77.0.10"


def test_udhcpc_renews_is_naked_after_an_ip_change_and_releases(vms: list[Vm], ports: Ports) -> None:
    vm = vms[0]
    ports.table[(vm.ifname, vm.mac)] = config(vm.mac, "10.77.0.11")
    proc = udhcpc(vm, "-R")
    vm.wait_record("bound")
    proc.send_signal(signal.SIGUSR1)  # renew now
    assert vm.wait_record("renew")["ip"] == "10.77.0.11"
    ports.table[(vm.ifname, vm.mac)] = config(vm.mac, "10.77.0.12")
    count = len(vm.records())
    proc.send_signal(signal.SIGUSR1)
    assert vm.wait_record("nak", after=count)  # the old address is refused ...
    assert vm.wait_record("bound", after=count)["ip"] == "10.77.0.12"  # ... the new one offered
    proc.send_signal(signal.SIGTERM)  # -R: release on exit
    assert proc.wait(timeout=WAIT) == 0
    assert ports.wait_event("release", vm.mac).ip == "10.77.0.12"


def test_dhclient_gets_the_configuration_renews_and_releases(vms: list[Vm], ports: Ports) -> None:
    vm = vms[1]
    ports.table[(vm.ifname, vm.mac)] = config(vm.mac, "10.77.0.20", lease_time=4)
    (vm.dir / "dhclient.conf").write_text(DHCLIENT_CONF)
    files = ["-cf", str(vm.dir / "dhclient.conf"), "-lf", str(vm.dir / "leases"),
             "-pf", str(vm.dir / "pid"), "-sf", vm.script()]
    vm.run("dhclient", "-d", "-1", "-v", *files, "eth0")
    bound = vm.wait_record("BOUND")
    assert (bound["new_ip_address"], bound["new_subnet_mask"]) == ("10.77.0.20", "255.255.255.0")
    assert bound["new_routers"] == "10.77.0.1"
    assert bound["new_domain_name_servers"] == "10.77.0.2 10.77.0.3"
    assert (bound["new_host_name"], bound["new_domain_name"]) == ("vm-20", "cloud.example")
    assert bound["new_interface_mtu"] == "1450"
    assert bound["new_rfc3442_classless_static_routes"] == "12 172 16 10 77 0 254 0 10 77 0 1"
    assert bound["new_dhcp_lease_time"] == "4"
    assert vm.wait_record("RENEW")["new_ip_address"] == "10.77.0.20"  # at T1, 2 s
    release = vm.run("dhclient", "-r", *files, "eth0")
    assert release.wait(timeout=WAIT) == 0
    assert ports.wait_event("release", vm.mac).ip == "10.77.0.20"


def test_dhcpcd_gets_the_configuration_and_releases(vms: list[Vm], ports: Ports) -> None:
    vm = vms[2]
    ports.table[(vm.ifname, vm.mac)] = config(vm.mac, "10.77.0.30")
    (vm.dir / "dhcpcd.conf").write_text(DHCPCD_CONF)
    # its run and database directories are compiled in: private ones, in the
    # mount namespace that ip netns exec made for this client alone
    proc = vm.run("sh", "-c", "mount -t tmpfs ocx-dh /run && mount -t tmpfs ocx-dh /var/lib/dhcpcd"
                  f" && exec dhcpcd -B -4 -t 8 -f {vm.dir}/dhcpcd.conf -c {vm.script(configure=False)} eth0")
    # (dhcpcd configures eth0 itself)
    bound = vm.wait_record("BOUND")
    assert (bound["new_ip_address"], bound["new_subnet_cidr"]) == ("10.77.0.30", "24")
    assert bound["new_routers"] == "10.77.0.1"
    assert bound["new_domain_name_servers"] == "10.77.0.2 10.77.0.3"
    assert (bound["new_host_name"], bound["new_domain_name"]) == ("vm-30", "cloud.example")
    assert bound["new_interface_mtu"] == "1450"
    assert bound["new_classless_static_routes"] == "172.16.0.0/12 10.77.0.254 0.0.0.0/0 10.77.0.1"
    assert bound["new_dhcp_client_identifier"].startswith("ff")  # its RFC 4361 id, echoed
    routes = subprocess.run(["ip", "-n", vm.ns, "-4", "route"], capture_output=True, text=True,
                            check=True).stdout
    assert "172.16.0.0/12 via 10.77.0.254" in routes and "default via 10.77.0.1" in routes
    proc.send_signal(signal.SIGTERM)  # "release" in its config: released before it stops
    proc.wait(timeout=WAIT)
    assert ports.wait_event("release", vm.mac).ip == "10.77.0.30"


def test_each_interface_gets_its_own_ports_answer(vms: list[Vm], ports: Ports) -> None:
    for n, vm in enumerate(vms[:2]):
        ports.table[(vm.ifname, vm.mac)] = config(vm.mac, f"10.77.{n + 1}.5", router=f"10.77.{n + 1}.1")
    procs = [udhcpc(vm, "-q", "-n") for vm in vms[:2]]
    for n, vm in enumerate(vms[:2]):
        bound = vm.wait_record("bound")
        assert (bound["ip"], bound["router"]) == (f"10.77.{n + 1}.5", f"10.77.{n + 1}.1")
    assert [p.wait(timeout=WAIT) for p in procs] == [0, 0]


def test_a_mac_the_lookup_does_not_know_gets_no_answer(vms: list[Vm], ports: Ports) -> None:
    vm = vms[0]
    ports.table[(vm.ifname, "fa:16:3e:77:99:99")] = config("fa:16:3e:77:99:99", "10.77.0.40")
    proc = udhcpc(vm, "-q", "-n", "-t", "2")  # gives up after 2 discovers a second apart
    assert proc.wait(timeout=WAIT) == 1
    assert not [r for r in vm.records() if r.get("event") == "bound"]
    assert not ports.events


def test_garbage_and_a_vanished_interface_do_not_stop_the_responder(
        vms: list[Vm], ports: Ports, responder: Responder, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="overcast.linux.dhcp_responder")
    vm, gone, gone_down = vms
    assert responder.attached() == {v.ifname for v in vms}
    ports.table[(vm.ifname, vm.mac)] = config(vm.mac, "10.77.0.50")
    valid = dhcp.client_message(dhcp.DISCOVER, vm.mac, 7)
    frames = [udp_frame(vm.mac, payload) for payload in (
        b"", b"\x00" * 10, bytes(range(256)) * 2, valid[:-1], valid[:-1] + b"\x0c\xff")]
    decline = dhcp.client_message(dhcp.DECLINE, vm.mac, 8, options=[
        (dhcp.SERVER_ID, bytes([10, 77, 0, 2])), (dhcp.REQUESTED_IP, bytes([10, 77, 0, 50]))])
    frames += [udp_frame(vm.mac, valid)[:30], udp_frame(vm.mac, valid)[:-10],  # cut short
               udp_frame("fa:16:3e:77:99:99", valid),  # chaddr not the sender's MAC
               udp_frame(vm.mac, decline)]  # and one good message among them
    sender = vm.run("python3", "-c", _SEND_FRAMES, *(f.hex() for f in frames))
    assert sender.wait(timeout=WAIT) == 0
    assert ports.wait_event("decline", vm.mac).ip == "10.77.0.50"
    subprocess.run(["ip", "link", "del", gone.ifname], check=True)  # deleted while up
    subprocess.run(["ip", "link", "set", gone_down.ifname, "down"], check=True)
    subprocess.run(["ip", "link", "del", gone_down.ifname], check=True)  # deleted while down
    # at once, before any sweep: what the agent's pass asks to reopen a tap made again
    assert not responder.alive(gone.ifname) and not responder.alive(gone_down.ifname)
    for state in ("down", "up"):  # a link that goes down and comes back is still answered
        subprocess.run(["ip", "link", "set", vm.ifname, state], check=True)
    assert responder.alive(vm.ifname)
    proc = udhcpc(vm, "-q", "-n")
    assert vm.wait_record("bound")["ip"] == "10.77.0.50"
    assert proc.wait(timeout=WAIT) == 0
    wait_until(lambda: responder.attached() == {vm.ifname}, "the vanished interfaces detached")
    logged = caplog.text  # the frames reached the parser and were refused there
    for why in ("shorter than its 240-byte header", "no END option", "claims 255 bytes",
                "chaddr fa:16:3e:77:10:00 sent from fa:16:3e:77:99:99",
                f"DHCP on {gone.ifname} stops", f"DHCP on {gone_down.ifname} stops"):
        assert why in logged


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {WAIT} s"
        time.sleep(0.05)


def udp_frame(src_mac: str, payload: bytes) -> bytes:
    """A broadcast Ethernet/IPv4/UDP frame from 0.0.0.0:68 to port 67 (checksums left 0)."""
    udp = struct.pack("!HHHH", 68, 67, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, bytes(4),
                     b"\xff" * 4)
    return b"\xff" * 6 + bytes.fromhex(src_mac.replace(":", "")) + b"\x08\x00" + ip + udp


# sends each hex argument as a raw Ethernet frame out of the VM's eth0
_SEND_FRAMES = """
import socket, sys
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
raw.bind(("eth0", 0))
for text in sys.argv[1:]:
    raw.send(bytes.fromhex(text))
"""


def test_a_detached_tap_is_parked_until_its_interface_goes_then_closed(
        vms: list[Vm], responder: Responder) -> None:
    """A port removed before its tap (the usual order of a VM's deletion): the
    socket stops answering at once but is closed only once the tap is gone, so
    the tap's deletion never waits on a socket being closed (packet_taps)."""
    vm, kept, _ = vms
    responder.detach(vm.ifname)
    responder.detach(kept.ifname)
    wait_until(lambda: {name for _, name, _ in responder._parked} == {vm.ifname, kept.ifname},
               "both sockets parked")
    assert vm.ifname not in responder.attached() and kept.ifname not in responder.attached()
    subprocess.run(["ip", "link", "del", vm.ifname], check=True)
    wait_until(lambda: {name for _, name, _ in responder._parked} == {kept.ifname},
               "the deleted tap's socket closed at a sweep, the other still parked")
