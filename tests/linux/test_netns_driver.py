"""(root) The router namespaces' primitives on the real kernel
(``linux/netns.py`` through ``NetlinkKernel``): each one written, then read
back with ``netns_rows()`` field by field; what is not ours or not this
host's is not listed; a namespace is adopted only when unmarked; deleting one
takes its veth's host side at once; and a process in a private mount
namespace (``ip netns exec``) is refused instead of making namespaces that
only it sees.

The host namespace is ``oc-t-rn-h`` (conftest ``namespaces``); the router
namespaces are named by ``names.router_netns`` for this file's hosts and
removed at the end of each test, pass or fail."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyroute2 import netns as pyroute2_netns

from overcast.linux.devices import NETNS_RUN_DIR, entered_netns
from overcast.linux.netlink import NetlinkKernel
from overcast.linux.netns import RouterNamespaces
from overcast.plan import names
from overcast.plan.diff import diff
from overcast.plan.firewall_expr import match, meta, payload
from overcast.plan.raw import (
    KernelRefusal,
    LinkExists,
    Netns,
    NsAddress,
    NsNeighbour,
    NsRoute,
    NsRule,
)
from overcast.plan.state import KernelState
from overcast.plan.subsystems import routers

from .conftest import ip_json, namespaces, sh

pytestmark = pytest.mark.root
PREFIX = "oc-t-rn"
HOST = "oc-t-rn-host"
OTHER_HOST = "oc-t-rn-other"
MAC = "fa:16:3e:00:00:01"


def _router_namespaces() -> list[str]:
    """Every router namespace of this file's two hosts (only those)."""
    return [n for n in os.listdir(NETNS_RUN_DIR)
            if names.is_router_netns(n, HOST) or names.is_router_netns(n, OTHER_HOST)]


def _remove_router_namespaces() -> None:
    for name in _router_namespaces():
        try:
            pyroute2_netns.remove(name)
        except OSError:
            os.unlink(os.path.join(NETNS_RUN_DIR, name))  # a stale file: nothing mounted


@pytest.fixture
def host_ns() -> Iterator[str]:
    _remove_router_namespaces()  # what a killed earlier run left
    with namespaces(PREFIX) as make:
        try:
            yield make("h")
        finally:
            _remove_router_namespaces()


@pytest.fixture
def kernel(host_ns: str) -> Iterator[NetlinkKernel]:
    with NetlinkKernel(netns=host_ns, host=HOST) as k:
        yield k


def _name(host: str = HOST) -> str:
    return names.router_netns(str(uuid.uuid4()), host)


def _row(kernel: NetlinkKernel, name: str) -> Netns:
    (found,) = [ns for ns in kernel.netns_rows() if ns.name == name]
    return found


def _sysctl(ns: str, path: str) -> str:
    return sh(ns, "cat", path).stdout.strip()


def test_a_new_namespace_is_marked_with_lo_up_and_forwarding(kernel: NetlinkKernel) -> None:
    name = _name()
    kernel.netns_add(name, names.router_mark("r1"))
    assert os.path.exists(os.path.join(NETNS_RUN_DIR, name))
    assert _row(kernel, name) == Netns(name, "overcast:router:r1", True)
    (lo,) = ip_json(name, "link", "show", "lo")
    assert "UP" in lo["flags"] and lo["ifalias"] == "overcast:router:r1"
    assert _sysctl(name, "/proc/sys/net/ipv4/ip_forward") == "1"
    assert _sysctl(name, "/proc/sys/net/ipv6/conf/all/forwarding") == "1"


def test_every_write_primitive_reads_back(kernel: NetlinkKernel, host_ns: str) -> None:
    name = _name()
    kernel.netns_add(name, names.router_mark("r1"))
    kernel.veth_add("ocqtest00001", "overcast:router-port:p1", 1450, "qr-test00001", name)
    host_side = kernel.link_get("ocqtest00001")
    assert host_side is not None
    assert (host_side.alias, host_side.mtu, host_side.up, host_side.ipv6) == \
        ("overcast:router-port:p1", 1450, False, False)
    assert _sysctl(host_ns, "/proc/sys/net/ipv6/conf/ocqtest00001/disable_ipv6") == "1"
    (peer,) = _row(kernel, name).links
    assert (peer.name, peer.kind, peer.mtu, peer.up) == ("qr-test00001", "veth", 1450, False)

    kernel.ns_link_set(name, "qr-test00001", MAC, 1400, True, True)
    kernel.ns_addr("add", name, "qr-test00001", "10.0.0.1/24")
    kernel.ns_addr("add", name, "qr-test00001", "fd00::1/64")
    kernel.ns_neigh("replace", name, "qr-test00001", "10.0.0.5", "FA:16:3E:00:00:05")
    kernel.ns_neigh("replace", name, "qr-test00001", "fd00::5", "fa:16:3e:00:00:05")
    kernel.ns_route("add", name, "0.0.0.0/0", "10.0.0.254")
    kernel.ns_route("add", name, "10.9.0.0/16", "10.0.0.253")
    kernel.ns_route("add", name, "::/0", "fd00::fe")
    row = _row(kernel, name)
    (peer,) = row.links
    assert (peer.mac, peer.mtu, peer.up, peer.ipv6) == (MAC, 1400, True, True)
    assert row.addresses == (NsAddress("qr-test00001", "10.0.0.1/24"),
                             NsAddress("qr-test00001", "fd00::1/64"))
    assert row.neighbours == (NsNeighbour("qr-test00001", "10.0.0.5", "fa:16:3e:00:00:05"),
                              NsNeighbour("qr-test00001", "fd00::5", "fa:16:3e:00:00:05"))
    assert row.routes == (NsRoute("0.0.0.0/0", "10.0.0.254", "qr-test00001"),
                          NsRoute("10.9.0.0/16", "10.0.0.253", "qr-test00001"),
                          NsRoute("::/0", "fd00::fe", "qr-test00001"))

    kernel.ns_neigh("replace", name, "qr-test00001", "10.0.0.5", "fa:16:3e:00:00:06")
    kernel.ns_route("del", name, "10.9.0.0/16", "10.0.0.253")
    kernel.ns_neigh("del", name, "qr-test00001", "fd00::5", "")
    kernel.ns_addr("add", name, "qr-test00001", "fd00::2/64")
    kernel.ns_addr("del", name, "qr-test00001", "fd00::1/64")
    row = _row(kernel, name)
    assert row.addresses == (NsAddress("qr-test00001", "10.0.0.1/24"),
                             NsAddress("qr-test00001", "fd00::2/64"))
    assert row.neighbours == (NsNeighbour("qr-test00001", "10.0.0.5", "fa:16:3e:00:00:06"),)
    assert row.routes == (NsRoute("0.0.0.0/0", "10.0.0.254", "qr-test00001"),
                          NsRoute("::/0", "fd00::fe", "qr-test00001"))


def test_a_device_going_down_loses_neighbours_and_ipv6_state(kernel: NetlinkKernel) -> None:
    """The kernel's side effects the routers subsystem (and the fake) must
    expect: down flushes the device's neighbours (permanent ones too), its
    routes (IPv4 and IPv6) and its IPv6 addresses; IPv4 addresses stay."""
    name = _name()
    kernel.netns_add(name, names.router_mark("r1"))
    kernel.veth_add("ocqtest00008", "overcast:router-port:p8", 1500, "qr-test00008", name)
    kernel.ns_link_set(name, "qr-test00008", MAC, 1500, True, True)
    for cidr in ("10.0.0.1/24", "fd00::1/64"):
        kernel.ns_addr("add", name, "qr-test00008", cidr)
    kernel.ns_neigh("replace", name, "qr-test00008", "10.0.0.5", "fa:16:3e:00:00:05")
    kernel.ns_neigh("replace", name, "qr-test00008", "fd00::5", "fa:16:3e:00:00:05")
    kernel.ns_route("add", name, "0.0.0.0/0", "10.0.0.254")
    kernel.ns_route("add", name, "::/0", "fd00::fe")
    kernel.ns_link_set(name, "qr-test00008", MAC, 1500, False, False)
    row = _row(kernel, name)
    (peer,) = row.links
    assert (peer.up, peer.ipv6) == (False, False)
    assert _sysctl(name, "/proc/sys/net/ipv6/conf/qr-test00008/disable_ipv6") == "1"
    assert row.addresses == (NsAddress("qr-test00008", "10.0.0.1/24"),)
    assert row.neighbours == ()
    assert row.routes == ()


def test_forwarding_is_read_in_the_router_namespace_not_the_callers(
        kernel: NetlinkKernel, host_ns: str) -> None:
    name = _name()
    kernel.netns_add(name, names.router_mark("r1"))
    assert _sysctl(host_ns, "/proc/sys/net/ipv4/ip_forward") == "0"
    with entered_netns(host_ns):  # the calling thread where forwarding is off
        assert _row(kernel, name).forwarding
    sh(name, "sysctl", "-qw", "net.ipv4.ip_forward=0")
    assert not _row(kernel, name).forwarding
    kernel.netns_forwarding(name)
    assert _row(kernel, name).forwarding
    sh(name, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=0")
    assert not _row(kernel, name).forwarding


def test_an_unmarked_namespace_is_adopted_a_marked_one_refused(kernel: NetlinkKernel) -> None:
    name = _name()
    pyroute2_netns.create(name)  # as a crash right after making it leaves it
    assert _row(kernel, name) == Netns(name, "", False)
    kernel.netns_add(name, names.router_mark("r1"))
    assert _row(kernel, name) == Netns(name, "overcast:router:r1", True)
    with pytest.raises(KernelRefusal, match=f"{name} exists with mark 'overcast:router:r1'"):
        kernel.netns_add(name, names.router_mark("r2"))
    assert _row(kernel, name).mark == "overcast:router:r1"


def test_a_stale_file_is_not_listed_and_a_namespace_is_mounted_onto_it(
        kernel: NetlinkKernel) -> None:
    name = _name()
    path = os.path.join(NETNS_RUN_DIR, name)
    open(path, "x").close()  # the file of a namespace whose mount went
    assert kernel.netns_rows() == []
    kernel.netns_add(name, names.router_mark("r1"))
    assert _row(kernel, name).mark == "overcast:router:r1"


def test_what_is_not_ours_is_not_listed(kernel: NetlinkKernel) -> None:
    other = _name(OTHER_HOST)
    pyroute2_netns.create(other)
    name = _name()
    kernel.netns_add(name, names.router_mark("r1"))
    kernel.veth_add("ocqtest00002", "overcast:router-port:p2", 1500, "qr-test00002", name)
    kernel.ns_link_set(name, "qr-test00002", MAC, 1500, True, True)
    kernel.ns_addr("add", name, "qr-test00002", "10.0.0.1/24")
    for command in (["route", "add", "10.7.0.0/16", "via", "10.0.0.9", "proto", "static"],
                    ["route", "add", "10.8.0.0/16", "via", "10.0.0.9", "proto", "112"],
                    ["route", "add", "10.6.0.0/16", "via", "10.0.0.9", "proto", "112",
                     "table", "100"],
                    ["rule", "add", "from", "10.0.0.0/24", "lookup", "100", "priority", "100",
                     "proto", "112"],
                    ["neigh", "add", "10.0.0.7", "lladdr", "fa:16:3e:00:00:07", "dev",
                     "qr-test00002", "nud", "reachable"],
                    ["neigh", "add", "10.0.0.8", "lladdr", "fa:16:3e:00:00:08", "dev",
                     "qr-test00002", "nud", "stale"],
                    ["addr", "add", "fe80::99/64", "dev", "qr-test00002"]):
        subprocess.run(["ip", "-n", name, *command], check=True)
    ip_json(name, "link")  # the namespace is there for `ip`
    (row,) = kernel.netns_rows()  # not the other host's
    assert row.name == name
    assert row.routes == ()
    assert row.rules == ()
    assert row.neighbours == ()
    assert row.addresses == (NsAddress("qr-test00002", "10.0.0.1/24"),)  # nor fe80::/10


def test_netns_del_takes_the_veths_host_side_with_it(kernel: NetlinkKernel, host_ns: str) -> None:
    name = _name()
    kernel.netns_add(name, names.router_mark("r1"))
    kernel.veth_add("ocqtest00003", "overcast:router-port:p3", 1500, "qr-test00003", name)
    kernel.ns_link_set(name, "qr-test00003", MAC, 1500, True, True)
    assert [ns.name for ns in kernel.netns_rows()] == [name]  # its socket is open now
    kernel.netns_del(name)
    assert not os.path.lexists(os.path.join(NETNS_RUN_DIR, name))
    assert kernel.link_get("ocqtest00003") is None  # at once: no wait for the kernel's cleanup
    assert kernel.netns_rows() == []
    assert [ln["ifname"] for ln in ip_json(host_ns, "link")] == ["lo"]
    with pytest.raises(KernelRefusal, match=f"router namespace {name}: no such namespace"):
        kernel.netns_del(name)


def test_a_namespace_deleted_behind_its_back_is_left_out(kernel: NetlinkKernel) -> None:
    gone, kept = _name(), _name()
    kernel.netns_add(gone, names.router_mark("r1"))
    kernel.netns_add(kept, names.router_mark("r2"))
    assert len(kernel.netns_rows()) == 2
    pyroute2_netns.remove(gone)
    assert [ns.name for ns in kernel.netns_rows()] == [kept]


def test_the_sockets_of_a_namespace_deleted_by_someone_else_are_closed(
        kernel: NetlinkKernel) -> None:
    """A socket made in a namespace keeps it alive, with every device in it:
    once a read finds it gone, ours are closed and the kernel frees it (its
    veth's host side goes; the kernel does that asynchronously, so it is
    awaited as an observable, up to a deadline)."""
    name = _name()
    kernel.netns_add(name, names.router_mark("r1"))
    kernel.veth_add("ocqtest00010", "overcast:router-port:p10", 1500, "qr-test00010", name)
    kernel.ns_link_set(name, "qr-test00010", MAC, 1500, True, False)  # its pyroute2 socket
    assert [ns.name for ns in kernel.netns_rows()] == [name]  # its reader
    pyroute2_netns.remove(name)
    assert kernel.link_get("ocqtest00010") is not None  # held by our sockets alone
    assert kernel.netns_rows() == []
    deadline = time.monotonic() + 10
    while kernel.link_get("ocqtest00010") is not None:
        assert time.monotonic() < deadline, "the namespace was not freed: a socket still holds it"
        time.sleep(0.01)


def test_a_listed_entry_whose_namespace_is_gone_is_left_out(
        kernel: NetlinkKernel, tmp_path: Path) -> None:
    """A run directory (the seam) whose entries are links: one to a live
    namespace, one to a namespace that went between the listing and the
    read (its file gone), one to a stale file (nothing mounted: EINVAL)."""
    kept, gone, stale = _name(), _name(), _name()
    kernel.netns_add(kept, names.router_mark("r1"))
    open(os.path.join(NETNS_RUN_DIR, stale), "x").close()
    for name in (kept, gone, stale):
        (tmp_path / name).symlink_to(os.path.join(NETNS_RUN_DIR, name))
    routers = RouterNamespaces(HOST, run_dir=str(tmp_path))
    try:
        assert routers.names() == sorted([kept, gone, stale])
        assert [ns.name for ns in routers.rows()] == [kept]
    finally:
        routers.close()


def test_refusals_name_the_namespace_and_the_object(kernel: NetlinkKernel) -> None:
    name = _name()
    kernel.netns_add(name, names.router_mark("r1"))
    kernel.veth_add("ocqtest00004", "overcast:router-port:p4", 1500, "qr-test00004", name)
    with pytest.raises(LinkExists, match="ocqtest00004"):
        kernel.veth_add("ocqtest00004", "overcast:router-port:p4", 1500, "qr-other", name)
    with pytest.raises(KernelRefusal, match="peer qr-test00004 exists"):
        kernel.veth_add("ocqtest00005", "overcast:router-port:p5", 1500, "qr-test00004", name)
    assert kernel.link_get("ocqtest00005") is None
    with pytest.raises(KernelRefusal, match=f"router namespace {name}: qr-nothing: no such device"):
        kernel.ns_addr("add", name, "qr-nothing", "10.0.0.1/24")
    with pytest.raises(KernelRefusal, match=f"router namespace {name}: route 10.5.0.0/16 "
                                            "table 254: netlink error"):
        kernel.ns_route("add", name, "10.5.0.0/16", "10.99.0.1")  # no route to the gateway
    missing = _name()
    with pytest.raises(KernelRefusal, match=f"router namespace {missing}: no such namespace"):
        kernel.ns_route("add", missing, "10.5.0.0/16", "")
    with pytest.raises(KernelRefusal, match=f"no router namespace .*{missing}"):
        kernel.veth_add("ocqtest00006", "overcast:router-port:p6", 1500, "qr-x", missing)


AGENT = """
import sys
import time
from overcast.linux.netlink import NetlinkKernel
from overcast.linux.netns import RouterNamespaces
from overcast.plan.raw import KernelRefusal
name, host = sys.argv[1], sys.argv[2]
with NetlinkKernel(host=host) as k:
    try:
        k.netns_add(name, "overcast:router:r1")
        k.veth_add("ocqtest00007", "overcast:router-port:p7", 1500, "qr-test00007", name)
    except KernelRefusal as exc:
        print(exc)
        sys.exit(3)
"""


def test_under_ip_netns_exec_netns_add_is_refused_and_leaves_nothing(
        kernel: NetlinkKernel, host_ns: str) -> None:
    """``ip netns exec`` makes a private mount namespace whose mounts are
    slaves: a namespace mounted there would be seen by no one else and go
    with the process (measured: ``ip netns add`` run so does exactly that)."""
    name = _name()
    done = sh(host_ns, sys.executable, "-c", AGENT, name, HOST, check=False)
    assert done.returncode == 3, done.stderr
    assert f"router namespace {name}: /run/netns is a slave mount" in done.stdout
    assert not os.path.lexists(os.path.join(NETNS_RUN_DIR, name))
    assert kernel.link_get("ocqtest00007") is None


def test_with_run_netns_shared_a_namespace_outlives_the_process_that_made_it(
        kernel: NetlinkKernel, host_ns: str) -> None:
    """The launcher that keeps ``/run/netns`` shared: the host's network
    namespace, a mount namespace of its own with propagation unchanged and
    its own ``/sys`` (what ``ip netns exec`` gives the agent, but slave)."""
    name = _name()
    launcher = ["nsenter", f"--net={NETNS_RUN_DIR}/{host_ns}", "--", "unshare", "--mount",
                "--propagation", "unchanged", "--", "sh", "-c",
                'mount --make-rslave /sys && umount -l /sys && mount -t sysfs sysfs /sys '
                '&& exec "$@"', "agent"]
    done = subprocess.run([*launcher, sys.executable, "-c", AGENT, name, HOST],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _row(kernel, name).mark == "overcast:router:r1"  # seen here, after it exited
    host_side = kernel.link_get("ocqtest00007")
    assert host_side is not None and host_side.alias == "overcast:router-port:p7"
    kernel.netns_del(name)
    assert kernel.link_get("ocqtest00007") is None


def test_the_routers_subsystem_converges_on_the_real_kernel_and_reverts(host_ns: str) -> None:
    """The lead's routers subsystem over this driver: one apply makes the
    desired state, a second finds nothing to do, an empty desired state
    takes it all away again (the namespace and the veth's host side)."""
    name = _name()
    mark = names.router_mark("r1")
    desired = KernelState.of([
        routers.RouterNamespace(name, mark),
        routers.RouterPort(name, "qr-test00009", "ocqtest00009", MAC, 1450,
                           "overcast:router-port:p9", ipv6=True),
        routers.RouterAddress(name, "qr-test00009", "10.0.0.1/24"),
        routers.RouterAddress(name, "qr-test00009", "fd00::1/64"),
        routers.RouterNeighbour(name, "qr-test00009", "10.0.0.5", "fa:16:3e:00:00:05"),
        routers.RouterNeighbour(name, "qr-test00009", "fd00::5", "fa:16:3e:00:00:05"),
        routers.RouterRoute(name, "10.9.0.0/16", "10.0.0.254"),
        routers.RouterRoute(name, "::/0", "fd00::fe"),
    ])
    with NetlinkKernel(netns=host_ns, host=HOST, subsystems=(routers.SUBSYSTEM,)) as k:
        assert k.apply(diff(desired, k.observe())) == []
        assert k.observe().without_devices() == desired
        assert diff(desired, k.observe()) == []
        assert k.apply(diff(KernelState(), k.observe())) == []
        assert k.netns_rows() == []
        assert k.link_get("ocqtest00009") is None
        assert not os.path.lexists(os.path.join(NETNS_RUN_DIR, name))


NAT = {"family": "ip", "table": "overcast_nat", "name": "postrouting"}


def test_an_nft_batch_in_the_namespace_reads_back_and_a_foreign_change_is_seen(
        kernel: NetlinkKernel) -> None:
    name = _name()
    kernel.netns_add(name, names.router_mark("r1"))
    assert _row(kernel, name).nft == ()
    kernel.ns_nft(name, [
        {"add": {"table": {"family": "ip", "name": "overcast_nat"}}},
        {"add": {"chain": {**NAT, "type": "nat", "hook": "postrouting", "prio": 100,
                           "policy": "accept"}}},
        {"add": {"rule": {**NAT, "chain": "postrouting", "comment": "digest1",
                          "expr": [{"match": {"op": "==", "left": {"payload": {
                              "protocol": "ip", "field": "saddr"}},
                              "right": {"prefix": {"addr": "10.0.0.0", "len": 24}}}},
                              {"snat": {"addr": "203.0.113.5"}}]}}},
    ])
    sh(name, "nft", "add", "table", "ip", "other")  # not ours: not listed
    rows = _row(kernel, name).nft
    assert [next(iter(r)) for r in rows] == ["table", "chain", "rule"]
    assert rows[2]["rule"]["comment"] == "digest1"
    assert _row(kernel, name).nft == rows  # the listing kept (the generation stayed)
    sh(name, "nft", "delete", "table", "ip", "overcast_nat")  # by someone else
    assert _row(kernel, name).nft == ()
    with pytest.raises(KernelRefusal, match=f"router namespace {name}: nftables: "):
        kernel.ns_nft(name, [{"add": {"chain": {**NAT, "type": "nat"}}}])  # no such table


def test_a_gratuitous_arp_leaves_the_router_port(kernel: NetlinkKernel, host_ns: str) -> None:
    name = _name()
    kernel.netns_add(name, names.router_mark("r1"))
    kernel.veth_add("ocqtest00011", "overcast:router-port:p11", 1500, "qg-test00011", name)
    kernel.ns_link_set(name, "qg-test00011", MAC, 1500, False, False)
    with pytest.raises(KernelRefusal, match=f"router namespace {name}: qg-test00011: "
                                            "gratuitous ARP for 203.0.113.5: .*down"):
        kernel.ns_garp(name, "qg-test00011", "203.0.113.5")  # the device is down
    kernel.ns_link_set(name, "qg-test00011", MAC, 1500, True, False)
    subprocess.run(["ip", "-n", host_ns, "link", "set", "ocqtest00011", "up"], check=True)
    with entered_netns(host_ns):
        capture = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
    with capture:
        capture.bind(("ocqtest00011", 0x0806))
        capture.settimeout(5)
        kernel.ns_garp(name, "qg-test00011", "203.0.113.5")
        frame = capture.recv(100)
    mac, ip = bytes.fromhex(MAC.replace(":", "")), socket.inet_aton("203.0.113.5")
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == mac and frame[12:14] == b"\x08\x06"
    assert frame[14:22] == bytes.fromhex("0001080006040001")  # Ethernet/IPv4, request
    assert frame[22:42] == mac + ip + b"\0" * 6 + ip  # sender = target = the address


def test_routes_of_other_tables_and_policy_rules_read_back(kernel: NetlinkKernel) -> None:
    name = _name()
    kernel.netns_add(name, names.router_mark("r1"))
    kernel.veth_add("ocqtest00012", "overcast:router-port:p12", 1500, "qr-test00012", name)
    kernel.ns_link_set(name, "qr-test00012", MAC, 1500, True, False)
    kernel.ns_addr("add", name, "qr-test00012", "10.0.0.1/24")
    kernel.ns_route("add", name, "0.0.0.0/0", "10.0.0.9", 100, "qr-test00012")
    kernel.ns_route("add", name, "10.0.0.9/32", "", 100, "qr-test00012")  # link scope
    kernel.ns_route("add", name, "198.51.100.0/24", "192.0.2.1", 101, "qr-test00012")  # onlink
    snat = NsRule(1000, "10.0.0.0/24", 100)
    main_first = NsRule(999, "", 254, suppress_prefixlength=0)
    kernel.ns_rule("add", name, snat)
    kernel.ns_rule("add", name, main_first)
    row = _row(kernel, name)
    assert row.routes == (NsRoute("0.0.0.0/0", "10.0.0.9", "qr-test00012", 100),
                          NsRoute("10.0.0.9/32", "", "qr-test00012", 100),
                          NsRoute("198.51.100.0/24", "192.0.2.1", "qr-test00012", 101))
    assert row.rules == (main_first, snat)
    (link_scope,) = ip_json(name, "route", "show", "table", "100", "10.0.0.9/32")
    assert link_scope["scope"] == "link"
    kernel.ns_rule("del", name, snat)
    kernel.ns_route("del", name, "198.51.100.0/24", "192.0.2.1", 101, "qr-test00012")
    row = _row(kernel, name)
    assert row.rules == (main_first,)
    assert [r.table for r in row.routes] == [100, 100]
    with pytest.raises(KernelRefusal, match=f"router namespace {name}: rule 1000 lookup 100: "):
        kernel.ns_rule("del", name, snat)


def test_a_floating_ips_records_converge_on_the_real_kernel_and_revert(host_ns: str) -> None:
    """The floating IP's part of a router as the plan makes it (its device,
    the /32, the way out in FIP_TABLE, the policy rules, the NAT table):
    one apply, then nothing to do (the NAT rules' digest read back from
    the kernel's listing), then all of it gone again."""
    name = _name()
    fip_dev = "qf-test00013"
    fixed, public = "10.0.0.5", "203.0.113.7"
    rules: list[tuple[str, list[Any]]] = [
        ("prerouting", [match(payload("ip", "daddr"), public), {"dnat": {"addr": fixed}}]),
        ("postrouting", [match(meta("oifname"), fip_dev), match(payload("ip", "saddr"), fixed),
                         {"snat": {"addr": public}}])]
    desired = KernelState.of([
        routers.RouterNamespace(name, names.router_mark("r1")),
        routers.RouterPort(name, fip_dev, "ocqtest00013", MAC, 1500, "overcast:router-port:p13"),
        routers.RouterAddress(name, fip_dev, f"{public}/32"),
        routers.RouterRoute(name, "0.0.0.0/0", "203.0.113.1", routers.FIP_TABLE, fip_dev),
        routers.RouterRule(name, NsRule(1000, "", 254, suppress_prefixlength=0)),
        routers.RouterRule(name, NsRule(2000, f"{fixed}/32", routers.FIP_TABLE)),
        routers.nat(name, rules),
    ])
    with NetlinkKernel(netns=host_ns, host=HOST, subsystems=(routers.SUBSYSTEM,)) as k:
        assert k.apply(diff(desired, k.observe())) == []
        assert k.observe().without_devices() == desired
        assert diff(desired, k.observe()) == []
        assert k.apply(diff(KernelState(), k.observe())) == []
        assert k.netns_rows() == []
        assert k.link_get("ocqtest00013") is None
