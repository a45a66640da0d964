"""DHCP and internal DNS, side by side with dnsmasq on the same machine in the same run (root).

One run measures:

  (1) lease time: 500 ports on one host, 50 clients asking at once (each on its own
      veth with its own MAC), DISCOVER -> OFFER -> REQUEST -> ACK; the time from each
      client's DISCOVER to its ACK, p50 / p99 over every client of every round.
      Overcast: a host namespace with 500 veth pairs, the host ends answered by
      ``DhcpServer`` (``agent/dhcp.py``) with the ``linux/dhcp_responder.py``
      responder in this process, a lease per (tap, MAC).  dnsmasq cannot answer per
      tap: it gets a bridge of its own namespace with the 500 veths on it and the
      500 MAC,IP pairs in a ``--dhcp-hostsfile`` (so every broadcast it is asked is
      flooded to the other 499 ports, as on a Neutron network's bridge).
  (2) churn: boots per second a host sustains, in waves of ``--wave`` ports on top
      of the 500 (50 at once, and 1: a pass per port): the ports appear (their
      veths made and waited for until up; Overcast: one ``DhcpServer.update``
      with the new leases; dnsmasq: the hostsfile rewritten, SIGHUP, until it logs
      the reload), every one is leased (one client each, all at once), then they
      go (update without them / hostsfile and SIGHUP; veths deleted in one
      netlink request).  Each phase is timed.  Then the same with the veths made once
      beforehand: the DHCP side alone (leases added, answered, removed).
  (3) DNS: 2,000 ports' names in a zone (``network_records``) answered by
      ``DnsResponder`` in this process, against dnsmasq with the same names in an
      ``--addn-hosts`` file and ``--local`` for the zone; ``dnsperf`` (closed loop,
      ``--dns-outstanding`` queries in flight) for queries/s, and at a fixed rate (``--dns-rate``)
      with every query's latency for p50 / p99; names that exist (A, NOERROR) and
      names of the zone that do not (NXDOMAIN).  The responder's per-source rate
      limit is lifted (dnsperf asks from one address; dnsmasq has none).

The load generator for DHCP is a small C program written out and compiled with
``cc`` at start (one AF_PACKET socket on every interface of its namespace, made
once, with a BPF filter for UDP to port 68; epoll): it reads a line of interface
names, runs those clients at once and prints each one's DISCOVER -> ACK time.  The CPU time of each side (the server
process or thread, the generator, dnsperf) is read from /proc around every
measurement, so the report can say which side saturated.  Every measurement is
repeated in rounds that alternate Overcast and dnsmasq; figures are medians.

Namespaces are ``oc-bd-<pid>-...``, links ``ocbd...``; all are deleted at the end
(also on Ctrl-C or an error), and every process is stopped by PID.

    sudo .venv/bin/python bench/dhcp_dns.py            # full run (~3 min)
    sudo .venv/bin/python bench/dhcp_dns.py --quick    # fewer rounds (~1 min)
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import queue
import random
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

# everything imported at start: one run measures one version of the code
from shell import BenchError, in_ns, ip_batch, run, stop_process  # noqa: E402

from overcast.agent.dhcp import DhcpServer  # noqa: E402
from overcast.linux.devices import entered_netns  # noqa: E402
from overcast.linux.dhcp_responder import Event, Lookup, Responder  # noqa: E402
from overcast.linux.dns_responder import DnsResponder, Limits  # noqa: E402
from overcast.plan.leases import SERVER_IP, SERVER_ROUTE, Lease  # noqa: E402
from overcast.services import dns  # noqa: E402

PREFIX = f"oc-bd-{os.getpid()}-"
LINK = "ocbd"  # every link this run makes starts so
DOMAIN = "bench.internal"
ROUTER = "10.20.0.1"  # dnsmasq's bridge address; the leases' router
DNS_PORT = 5300
OURS_DNS, DNSMASQ_DNS = "127.0.0.1", "127.0.0.2"
CHURN_FIRST, PREMADE_FIRST = 1000, 2000  # port numbers of the churned and pre-made ports
BASE_GROUP, CHURN_GROUP = 76, 77  # the link groups of the 500 veths and of the churned ones
RTMGRP_LINK, RTM_NEWLINK, RTM_DELLINK, IFLA_IFNAME, IFLA_OPERSTATE, IF_OPER_UP = 1, 16, 17, 3, 16, 6
SO_RCVBUFFORCE = 33
GOAL_P99_MS, GOAL_BOOTS = 10.0, 500.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

GENERATOR_C = r"""
/* DHCP load: for each line of interface names on stdin, one client per interface
   does DISCOVER -> OFFER -> REQUEST -> ACK, all at once; prints one line with each
   client's microseconds from its DISCOVER to its ACK (-1: none in time).
   One packet socket for every interface of the namespace, made once: opening and
   closing one per client and round would cost a kernel RCU grace period at each close. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXC 1024
struct client { int ifindex; unsigned char mac[6]; unsigned char xid[4]; int state; double t0, lat; };
static struct client cl[MAXC];
static int fd;

static double now_us(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static uint16_t csum(const unsigned char *p, int n) {
    uint32_t s = 0;
    for (int i = 0; i + 1 < n; i += 2) s += (p[i] << 8) | p[i + 1];
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return ~s & 0xffff;
}

/* IPv4, UDP, destination port 68 (a header without options), else drop */
static struct sock_filter code[] = {
    {0x28, 0, 0, 12}, {0x15, 0, 5, 0x0800}, {0x30, 0, 0, 23}, {0x15, 0, 3, 17},
    {0x28, 0, 0, 36}, {0x15, 0, 1, 68}, {0x06, 0, 0, 0x40000}, {0x06, 0, 0, 0}};

static int open_socket(void) {
    struct sock_fprog prog = {sizeof code / sizeof code[0], code};
    int s = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, 0);
    if (s < 0) return -1;
    if (setsockopt(s, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0) return -1;
    int size = 8 << 20;
    setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
    struct sockaddr_ll a; memset(&a, 0, sizeof a);
    a.sll_family = AF_PACKET; a.sll_protocol = htons(ETH_P_IP);  /* every interface */
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) return -1;
    return s;
}

static int find_client(struct client *c, const char *name) {
    struct ifreq ifr; memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) return -1;
    memcpy(c->mac, ifr.ifr_hwaddr.sa_data, 6);
    c->ifindex = if_nametoindex(name);
    return c->ifindex ? 0 : -1;
}

static void send_msg(struct client *c, int type, const unsigned char *yiaddr,
                     const unsigned char *server) {
    unsigned char f[600]; memset(f, 0, sizeof f);
    unsigned char *ip = f + 14, *udp = ip + 20, *b = udp + 8, *o = b + 240;
    memset(f, 0xff, 6); memcpy(f + 6, c->mac, 6); f[12] = 8;
    b[0] = 1; b[1] = 1; b[2] = 6; memcpy(b + 4, c->xid, 4); memcpy(b + 28, c->mac, 6);
    b[236] = 99; b[237] = 130; b[238] = 83; b[239] = 99;
    *o++ = 53; *o++ = 1; *o++ = type;
    if (type == 3) {
        *o++ = 50; *o++ = 4; memcpy(o, yiaddr, 4); o += 4;
        *o++ = 54; *o++ = 4; memcpy(o, server, 4); o += 4;
    }
    *o++ = 55; *o++ = 6; *o++ = 1; *o++ = 3; *o++ = 6; *o++ = 15; *o++ = 26; *o++ = 121;
    *o++ = 255;
    int blen = o - b < 300 ? 300 : o - b, ulen = 8 + blen, total = 20 + ulen;
    udp[1] = 68; udp[3] = 67; udp[4] = ulen >> 8; udp[5] = ulen & 255; /* checksum 0: none */
    ip[0] = 0x45; ip[2] = total >> 8; ip[3] = total & 255; ip[8] = 64; ip[9] = 17;
    memset(ip + 16, 0xff, 4);
    uint16_t s = csum(ip, 20); ip[10] = s >> 8; ip[11] = s & 255;
    struct sockaddr_ll a; memset(&a, 0, sizeof a);
    a.sll_family = AF_PACKET; a.sll_protocol = htons(ETH_P_IP); a.sll_ifindex = c->ifindex;
    a.sll_halen = 6; memset(a.sll_addr, 0xff, 6);
    if (sendto(fd, f, 14 + total, 0, (struct sockaddr *)&a, sizeof a) < 0) perror("send");
}

/* 1 when the frame finished client c's exchange */
static int on_frame(struct client *c, const unsigned char *f, int n) {
    if (n < 14 + 20 + 8 + 240) return 0;
    const unsigned char *b = f + 14 + (f[14] & 15) * 4 + 8, *end = f + n, *o = b + 240;
    if (o > end || b[0] != 2 || memcmp(b + 4, c->xid, 4) || memcmp(b + 28, c->mac, 6)) return 0;
    int type = 0; unsigned char server[4] = {0};
    while (o + 2 <= end && *o != 255) {
        if (*o == 0) { o++; continue; }
        if (o + 2 + o[1] > end) break;
        if (o[0] == 53 && o[1] == 1) type = o[2];
        if (o[0] == 54 && o[1] == 4) memcpy(server, o + 2, 4);
        o += 2 + o[1];
    }
    if (type == 2 && c->state == 0) { send_msg(c, 3, b + 16, server); c->state = 1; }
    else if (type == 5 && c->state == 1) { c->lat = now_us() - c->t0; c->state = 2; return 1; }
    return 0;
}

static void drain(void) {
    unsigned char f[2048];
    while (recv(fd, f, sizeof f, 0) > 0) {}
}

static void one_round(int n, int timeout_ms) {
    unsigned char f[2048];
    int done = 0;
    drain();  /* late answers of an earlier round */
    for (int i = 0; i < n; i++) {
        uint32_t x = (uint32_t)rand(); memcpy(cl[i].xid, &x, 4);
        cl[i].state = 0; cl[i].t0 = now_us(); send_msg(&cl[i], 1, 0, 0);
    }
    double deadline = now_us() + timeout_ms * 1000.0;
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN}, out;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    while (done < n) {
        double left = deadline - now_us();
        if (left <= 0) break;
        if (epoll_wait(ep, &out, 1, (int)(left / 1000) + 1) <= 0) continue;
        struct sockaddr_ll from; socklen_t size = sizeof from;
        int len;
        while ((len = recvfrom(fd, f, sizeof f, 0, (struct sockaddr *)&from, &size)) > 0) {
            if (from.sll_pkttype == PACKET_OUTGOING) continue;
            for (int i = 0; i < n; i++)
                if (cl[i].ifindex == from.sll_ifindex) { done += on_frame(&cl[i], f, len); break; }
            size = sizeof from;
        }
    }
    close(ep);
}

int main(int argc, char **argv) {
    int timeout_ms = argc > 1 ? atoi(argv[1]) : 1000;
    static char line[1 << 16];
    srand(getpid());
    if ((fd = open_socket()) < 0) { perror("packet socket"); return 1; }
    while (fgets(line, sizeof line, stdin)) {
        int n = 0, bad = 0;
        for (char *t = strtok(line, " \n"); t && n < MAXC; t = strtok(NULL, " \n")) {
            if (find_client(&cl[n], t) < 0) { printf("E %s: %s\n", t, strerror(errno)); bad = 1; break; }
            n++;
        }
        if (!bad) {
            one_round(n, timeout_ms);
            for (int i = 0; i < n; i++) printf("%.1f ", cl[i].state == 2 ? cl[i].lat : -1.0);
            printf("\n");
        }
        fflush(stdout);
    }
    return 0;
}
"""


# --------------------------------------------------------------------------- what this run made
@dataclass
class Env:
    """Namespaces and processes of this run, undone in ``close``."""

    namespaces: list[str] = field(default_factory=list)
    links: dict[str, LinkWatch] = field(default_factory=dict)  # by namespace
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def netns(self, role: str) -> str:
        name = PREFIX + role
        if name in run(["ip", "netns", "list"]).stdout.split():
            raise BenchError(f"namespace {name} already exists")
        self.namespaces.append(name)
        run(["ip", "netns", "add", name])
        run(in_ns(name, ["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                         "net.ipv6.conf.default.disable_ipv6=1"]))
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        self.links[name] = LinkWatch(name)
        return name

    def start(self, argv: list[str], stdin: bool = False, stderr: bool = False
              ) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE if stderr else subprocess.DEVNULL,
                             stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                             start_new_session=True)
        self.procs.append(p)
        return p

    def close(self) -> None:
        for p in reversed(self.procs):
            try:
                stop_process(p)
            except Exception as exc:  # noqa: BLE001 - clean up the rest anyway
                print(f"cleanup: process {p.pid}: {exc}", file=sys.stderr)
            for pipe in (p.stdin, p.stdout, p.stderr):
                if pipe is not None:
                    pipe.close()
        self.procs.clear()
        for watch in self.links.values():
            watch.close()
        self.links.clear()
        existing = set(run(["ip", "netns", "list"], check=False).stdout.split())
        for name in reversed(self.namespaces):  # their links go with them
            if name.startswith(PREFIX) and name in existing:
                run(["ip", "netns", "delete", name], check=False)
        self.namespaces.clear()


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    return sum(cpu_times(pid))


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------- ports and links
def mac(n: int) -> str:
    return f"fa:16:3e:bd:{n >> 8:02x}:{n & 0xFF:02x}"


def address(n: int) -> str:
    return f"10.20.{(n + 10) >> 8}.{(n + 10) & 0xFF}"


def lease(n: int) -> Lease:
    """Port ``n``'s lease on its host end ``ocbdh<n>``, as ``plan_leases`` gives one."""
    return Lease(dev=f"{LINK}h{n}", port_id=f"bd000000-0000-4000-8000-{n:012d}", mac=mac(n),
                 ip=address(n), prefixlen=16, server_ip=SERVER_IP, router=ROUTER,
                 dns_servers=(ROUTER,), domain=DOMAIN, host_name=f"vm-{n}", mtu=1450,
                 routes=(SERVER_ROUTE,))


def make_pairs(env: Env, host_ns: str, vm_ns: str, ports: Sequence[int], ends: tuple[str, str],
               bridge: str | None = None, group: int = BASE_GROUP) -> None:
    """Veth pairs ``ocbd<host><n>`` (in ``host_ns``, on ``bridge`` if given, in link
    group ``group``) and ``ocbd<vm><n>`` (in ``vm_ns``, with port n's MAC), all up.
    Each is set up by a message of its own: a whole group set up in one (``link set
    group G up``) had the carrier of 500 veths wait up to 8 s here (the kernel's
    link watch takes a limited number of devices a run)."""
    (host, vm), master = ends, f" master {bridge}" if bridge else ""
    ip_batch(host_ns, [f"link add {LINK}{host}{n} group {group}{master} type veth peer name "
                       f"{LINK}{vm}{n} address {mac(n)} netns {vm_ns}" for n in ports]
             + [f"link set {LINK}{host}{n} up" for n in ports])
    ip_batch(vm_ns, [f"link set {LINK}{vm}{n} up" for n in ports])
    env.links[host_ns].wait_up([f"{LINK}{host}{n}" for n in ports])
    env.links[vm_ns].wait_up([f"{LINK}{vm}{n}" for n in ports])


def offset_ifindexes(ns: str) -> None:
    """A link in ``ns`` so that a veth's two ends never get the same ifindex in
    their two namespaces: the kernel takes a veth whose peer's ifindex equals its
    own for a link of its own kind (like a tap) and delays its carrier event, up to
    a second (the link watch's pace)."""
    ip_batch(ns, [f"link add {LINK}pad0 type veth peer name {LINK}pad1"])


class LinkWatch:
    """The operational state of every link of a namespace, kept from its
    rtnetlink link events (a socket opened in the namespace when it is made):
    waiting for 50 new veths to be up is reading their events, where a listing
    of the namespace's 550 links costs ~8 ms of the kernel's time a poll."""

    def __init__(self, ns: str) -> None:
        self.ns, self.up = ns, dict[str, bool]()
        with entered_netns(ns):
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK,
                                      socket.NETLINK_ROUTE)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
            self.sock.bind((0, RTMGRP_LINK))
        except OSError:
            self.sock.close()
            raise
        self._resync()

    def wait_up(self, names: Sequence[str], timeout: float = 5.0) -> None:
        """Until every one of ``names`` is operationally up: a new link sends
        nothing (its queue is the kernel's no-op one) until the link watch has
        seen its carrier; a VM would see its first DHCP request go nowhere."""
        deadline = time.monotonic() + timeout
        while True:
            self._drain()
            down = [n for n in names if not self.up.get(n)]
            if not down:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"in {self.ns}, {len(down)} links not up after {timeout}s, "
                                 f"e.g. {down[0]}")
            select.select([self.sock], [], [], left)

    def close(self) -> None:
        self.sock.close()

    def _drain(self) -> None:
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                self._resync()  # events were lost: read the state whole
                continue
            self._events(data)

    def _events(self, data: bytes) -> None:
        off = 0
        while off + 32 <= len(data):
            length, kind = struct.unpack_from("=LH", data, off)
            if length < 32:
                return
            if kind in (RTM_NEWLINK, RTM_DELLINK):
                name, oper, at = None, 0, off + 32
                while at + 4 <= off + length:
                    alen, atype = struct.unpack_from("=HH", data, at)
                    if alen < 4:
                        break
                    if atype == IFLA_IFNAME:
                        name = data[at + 4:at + alen].split(b"\0", 1)[0].decode()
                    elif atype == IFLA_OPERSTATE:
                        oper = data[at + 4]
                    at += (alen + 3) & ~3
                if name is not None:
                    self.up[name] = kind == RTM_NEWLINK and oper == IF_OPER_UP
            off += (length + 3) & ~3

    def _resync(self) -> None:
        while True:  # what is queued is older than the listing below
            try:
                self.sock.recv(1 << 20)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
        listing = run(["ip", "-n", self.ns, "-br", "link", "show"]).stdout.splitlines()
        self.up = {f[0].split("@")[0]: f[1] == "UP" for f in map(str.split, listing) if len(f) > 1}


def delete_group(host_ns: str) -> None:
    """The churned pairs, in one netlink request: the kernel unregisters them
    together, with one RCU grace period instead of one each (about 20 ms a veth
    when deleted one by one here)."""
    run(["ip", "-n", host_ns, "link", "del", "group", str(CHURN_GROUP)])


# --------------------------------------------------------------------------- the generator
def compile_generator(workdir: Path) -> Path:
    if shutil.which("cc") is None:
        raise BenchError("no C compiler (cc): run scripts/setup")
    source, out = workdir / "dhcp_load.c", workdir / "dhcp_load"
    source.write_text(GENERATOR_C)
    run(["cc", "-O2", "-Wall", "-o", str(out), str(source)])
    return out


class Generator:
    """The C client in ``ns``: one line of interface names in, their times out."""

    def __init__(self, env: Env, ns: str, tool: Path, timeout_ms: int) -> None:
        self.p = env.start(in_ns(ns, [str(tool), str(timeout_ms)]), stdin=True)

    def round(self, ifnames: Sequence[str]) -> list[float | None]:
        """Each client's DISCOVER -> ACK in ms (None: no ACK within the timeout)."""
        assert self.p.stdin is not None and self.p.stdout is not None
        self.p.stdin.write((" ".join(ifnames) + "\n").encode())
        self.p.stdin.flush()
        line = self.p.stdout.readline().decode()
        if not line or line.startswith("E "):
            raise BenchError(f"DHCP generator: {line.strip() or 'exited'}")
        return [None if float(x) < 0 else float(x) / 1000 for x in line.split()]

    def cpu(self) -> float:
        return cpu_seconds(self.p.pid)

    def kernel_cpu(self) -> float:
        """Its system time.  A frame sent on a veth is received by its peer in the
        softirq that the sender's system call runs on leaving, so the bridge's
        flooding of a broadcast to every port is mostly counted here."""
        return cpu_times(self.p.pid)[1]


# --------------------------------------------------------------------------- the two servers
class Closable(Protocol):
    def close(self) -> None: ...


class DhcpSide(Protocol):
    name: str
    gen: Generator
    vm: str  # the letter of the client ends' names

    def ports(self, ports: Sequence[int]) -> Callable[[], None]: ...
    def make(self, ports: Sequence[int], group: int = BASE_GROUP) -> None: ...
    def delete(self) -> None: ...
    def cpu(self) -> float: ...


def responder(lookup: Lookup, *on_event: Callable[[Event], None]) -> Responder:
    """The responder for ``DhcpServer`` (whose factory passes an event callback
    or not, by version)."""
    return Responder(lookup, *on_event)


class Ours:
    """500 veths on a host namespace, answered by ``DhcpServer`` in this process."""

    name, vm = "Overcast", "v"

    def __init__(self, env: Env, tool: Path, base: Sequence[int], timeout_ms: int) -> None:
        self.env, (self.host, vm_ns) = env, (env.netns("host"), env.netns("vm"))
        self.vm_ns = vm_ns
        offset_ifindexes(vm_ns)
        make_pairs(env, self.host, vm_ns, base, ("h", "v"))
        self.base = list(base)
        self.server = DhcpServer(responder)
        self.server.responder.start()
        self.ports([])()
        self.gen = Generator(env, vm_ns, tool, timeout_ms)

    def ports(self, extra: Sequence[int]) -> Callable[[], None]:
        """Leases for the 500 and ``extra``: one update, as an agent's pass makes,
        to be called.  The leases are new objects, as each pass's plan makes them
        (its time, not the update's: they are built here, before the call)."""
        leases = [lease(n) for n in [*self.base, *extra]]
        present = frozenset(le.dev for le in leases)

        def update() -> None:
            with entered_netns(self.host):
                self.server.update(leases, present)
        return update

    def make(self, ports: Sequence[int], group: int = BASE_GROUP) -> None:
        make_pairs(self.env, self.host, self.vm_ns, ports, ("h", "v"), group=group)

    def delete(self) -> None:
        delete_group(self.host)

    def cpu(self) -> float:
        """This process's CPU: the responder's thread and ``update`` (the main
        thread only waits for the generator meanwhile)."""
        return own_cpu()

    def close(self) -> None:
        self.server.responder.stop()


class Dnsmasq:
    """dnsmasq in a namespace of its own, on a bridge of the 500 veths."""

    name, vm = "dnsmasq", "w"

    def __init__(self, env: Env, tool: Path, workdir: Path, base: Sequence[int],
                 timeout_ms: int) -> None:
        self.env, self.host, self.vm_ns = env, env.netns("dnsmasq"), env.netns("dvm")
        ip_batch(self.host, [f"link add {LINK}br type bridge", f"link set {LINK}br up",
                             f"addr add {ROUTER}/16 dev {LINK}br"])
        make_pairs(env, self.host, self.vm_ns, base, ("b", "w"), bridge=f"{LINK}br")
        self.base = list(base)
        self.hostsfile = workdir / "dhcp-hosts"
        self.hostsfile.write_text(self._hosts([]))
        self.p = env.start(in_ns(self.host, [
            "dnsmasq", "-C", "/dev/null", "--no-daemon", "--user=root", "--port=0",
            f"--interface={LINK}br", "--bind-interfaces", "--leasefile-ro", "--no-ping",
            f"--dhcp-range={ROUTER},static,255.255.0.0,24h", "--dhcp-authoritative",
            f"--dhcp-hostsfile={self.hostsfile}", f"--dhcp-option=option:router,{ROUTER}",
            f"--dhcp-option=option:dns-server,{ROUTER}", f"--domain={DOMAIN}",
            "--quiet-dhcp", "--log-facility=-", f"--pid-file={workdir / 'dnsmasq-dhcp.pid'}"]),
            stderr=True)
        self.reloads: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read_log, daemon=True).start()
        self._reloaded(10)
        self.gen = Generator(env, self.vm_ns, tool, timeout_ms)

    def _hosts(self, extra: Sequence[int]) -> str:
        return "".join(f"{mac(n)},{address(n)}\n" for n in [*self.base, *extra])

    def _read_log(self) -> None:
        assert self.p.stderr is not None
        for raw in self.p.stderr:
            line = raw.decode(errors="replace")
            if f"read {self.hostsfile}" in line:
                self.reloads.put(line)

    def _reloaded(self, timeout: float) -> None:
        try:
            self.reloads.get(timeout=timeout)
        except queue.Empty:
            raise BenchError(f"dnsmasq did not (re)read {self.hostsfile} within {timeout}s "
                             f"(exit {self.p.poll()})") from None

    def ports(self, extra: Sequence[int]) -> Callable[[], None]:
        """The hostsfile with the 500 and ``extra`` written, SIGHUP, until dnsmasq
        says it read it: to be called (its text composed here, before the call)."""
        text = self._hosts(extra)

        def update() -> None:
            self.hostsfile.write_text(text)
            self.p.send_signal(signal.SIGHUP)
            self._reloaded(5)
        return update

    def make(self, ports: Sequence[int], group: int = BASE_GROUP) -> None:
        make_pairs(self.env, self.host, self.vm_ns, ports, ("b", "w"), bridge=f"{LINK}br",
                   group=group)

    def delete(self) -> None:
        delete_group(self.host)

    def cpu(self) -> float:
        return cpu_seconds(self.p.pid)


# --------------------------------------------------------------------------- (1) lease time
@dataclass
class Leases:
    ms: list[float] = field(default_factory=list)  # every client's DISCOVER -> ACK
    lost: int = 0
    asked: int = 0
    wall: float = 0.0
    server_cpu: float = 0.0
    gen_cpu: float = 0.0
    gen_kernel: float = 0.0


def lease_rounds(side: DhcpSide, base: Sequence[int], clients: int, rounds: int, first: int,
                 out: Leases) -> None:
    """``rounds`` rounds of ``clients`` at once, each round the next ``clients`` of the ports."""
    cpu0, gen0, sys0, t0 = side.cpu(), side.gen.cpu(), side.gen.kernel_cpu(), time.perf_counter()
    for r in range(first, first + rounds):
        start = (r * clients) % len(base)
        chosen = [base[(start + i) % len(base)] for i in range(clients)]
        got = side.gen.round([f"{LINK}{side.vm}{n}" for n in chosen])
        out.ms += [x for x in got if x is not None]
        out.lost += sum(x is None for x in got)
        out.asked += len(got)
    out.wall += time.perf_counter() - t0
    out.server_cpu += side.cpu() - cpu0
    out.gen_cpu += side.gen.cpu() - gen0
    out.gen_kernel += side.gen.kernel_cpu() - sys0


# --------------------------------------------------------------------------- (2) churn
PHASES = ("make veths", "ports added", "leased", "ports removed", "delete veths")


@dataclass
class Churn:
    boots: int = 0
    lost: int = 0
    phases: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    rates: list[float] = field(default_factory=list)  # boots/s of each block of waves
    waves: int = 0
    server_cpu: float = 0.0
    gen_cpu: float = 0.0

    @property
    def total(self) -> float:
        return sum(self.phases.values())


def churn_wave(side: DhcpSide, wave: Sequence[int], veths: bool, out: Churn) -> float:
    """One wave: ports appear, are leased, go.  Returns its seconds."""
    got: list[float | None] = []

    def lease_all() -> None:
        got.extend(side.gen.round([f"{LINK}{side.vm}{n}" for n in wave]))

    def make() -> None:
        if veths:
            side.make(wave, CHURN_GROUP)

    def delete() -> None:
        if veths:
            side.delete()

    steps: list[Callable[[], None]] = [make, side.ports(wave), lease_all, side.ports([]), delete]
    marks = [time.perf_counter()]
    for phase, step in zip(PHASES, steps, strict=True):
        step()
        marks.append(time.perf_counter())
        out.phases[phase] += marks[-1] - marks[-2]
    out.waves += 1
    out.boots += sum(x is not None for x in got)
    out.lost += sum(x is None for x in got)
    return marks[-1] - marks[0]


def churn_block(side: DhcpSide, wave: Sequence[int], waves: int, veths: bool, out: Churn) -> None:
    cpu0, gen0 = side.cpu(), side.gen.cpu()
    seconds = sum(churn_wave(side, wave, veths, out) for _ in range(waves))
    out.rates.append(waves * len(wave) / seconds)
    out.server_cpu += side.cpu() - cpu0
    out.gen_cpu += side.gen.cpu() - gen0


# --------------------------------------------------------------------------- (3) DNS
@dataclass
class DnsFigures:
    qps: list[float] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)  # every query's latency at the fixed rate
    lost: int = 0
    wrong: int = 0  # answers whose rcode was not the expected one
    server_cpu: float = 0.0
    perf_cpu: float = 0.0
    wall: float = 0.0


class DnsBed:
    """DnsResponder on 127.0.0.1 and dnsmasq on 127.0.0.2 of one namespace, the
    same ``names`` names in the zone, and the query files."""

    def __init__(self, env: Env, workdir: Path, names: int) -> None:
        self.env, self.ns = env, env.netns("dns")
        ip_batch(self.ns, [f"addr add {DNSMASQ_DNS}/8 dev lo"])
        hosts = [(f"vm-{n}.{DOMAIN}", [f"10.30.{n >> 8}.{n & 0xFF}"]) for n in range(names)]
        records = dns.network_records(DOMAIN, hosts, ["10.30.0.0/16"], serial=1)
        self.ours = DnsResponder([OURS_DNS], lambda source, local: records, port=DNS_PORT,
                                 limits=Limits(rate=1e9, burst=1e9))
        with entered_netns(self.ns):
            self.ours.start()
        hostsfile = workdir / "dns-hosts"
        hostsfile.write_text("".join(f"{ips[0]} {name}\n" for name, ips in hosts))
        self.dnsmasq = env.start(in_ns(self.ns, [
            "dnsmasq", "-C", "/dev/null", "--no-daemon", "--user=root", f"--port={DNS_PORT}",
            f"--listen-address={DNSMASQ_DNS}", "--bind-interfaces", "--no-resolv", "--no-hosts",
            f"--addn-hosts={hostsfile}", f"--local=/{DOMAIN}/", "--log-facility=/dev/null",
            f"--pid-file={workdir / 'dnsmasq-dns.pid'}"]))
        rng = random.Random(1)
        self.files = {}
        for kind, label in (("hit", "vm"), ("nx", "nx")):
            path = workdir / f"queries-{kind}"
            path.write_text("".join(f"{label}-{rng.randrange(names)}.{DOMAIN} A\n"
                                    for _ in range(20000)))
            self.files[kind] = path
        self._wait_dnsmasq()

    def _wait_dnsmasq(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.dnsmasq.poll() is not None:
                raise BenchError(f"DNS dnsmasq exited ({self.dnsmasq.returncode})")
            ok = run(in_ns(self.ns, ["dig", "+short", "+tries=1", "+time=1", "-p", str(DNS_PORT),
                                     f"@{DNSMASQ_DNS}", f"vm-0.{DOMAIN}"]), check=False)
            if ok.stdout.strip():
                return
            time.sleep(0.1)
        raise BenchError("DNS dnsmasq does not answer")

    def server_cpu(self, server: str) -> float:
        return own_cpu() if server == OURS_DNS else cpu_seconds(self.dnsmasq.pid)

    def dnsperf(self, server: str, kind: str, seconds: float, out: DnsFigures,
                outstanding: int, rate: int | None = None) -> None:
        """One dnsperf run: closed loop (``rate`` None) for queries/s, else at
        ``rate`` queries/s with every query's latency."""
        argv = ["dnsperf", "-s", server, "-p", str(DNS_PORT), "-d", str(self.files[kind]),
                "-l", f"{seconds:g}", "-c", "4", "-q", str(outstanding), "-t", "1"]
        argv += ["-Q", str(rate), "-v"] if rate else []
        cpu0, perf0, t0 = self.server_cpu(server), children_cpu(), time.perf_counter()
        p = self.env.start(in_ns(self.ns, argv))
        text, _ = p.communicate(timeout=seconds + 30)
        self.env.procs.remove(p)
        out.wall += time.perf_counter() - t0
        out.server_cpu += self.server_cpu(server) - cpu0
        out.perf_cpu += children_cpu() - perf0  # dnsperf: the only child reaped meanwhile
        parse_dnsperf(text.decode(errors="replace"), kind, rate is not None, out)

    def close(self) -> None:
        self.ours.stop()


def parse_dnsperf(text: str, kind: str, verbose: bool, out: DnsFigures) -> None:
    want = "NOERROR" if kind == "hit" else "NXDOMAIN"
    qps = re.search(r"Queries per second:\s+([\d.]+)", text)
    lost = re.search(r"Queries lost:\s+(\d+)", text)
    if qps is None or lost is None:
        raise BenchError(f"dnsperf: no statistics in its output: {text[-500:]}")
    out.lost += int(lost.group(1))
    codes = re.search(r"Response codes:\s+(.*)", text)
    for code, count in re.findall(r"([A-Z]+) (\d+)", codes.group(1) if codes else ""):
        out.wrong += int(count) if code != want else 0
    if verbose:
        out.ms += [float(x) * 1000 for x in re.findall(r"^> \w+ \S+ \w+ ([\d.]+)$", text, re.M)]
    else:
        out.qps.append(float(qps.group(1)))


# --------------------------------------------------------------------------- report
def med(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def pct(xs: Sequence[float], p: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def cpu_share(cpu: float, wall: float) -> str:
    return f"{100 * cpu / wall:.0f}%" if wall > 0 else "?"


def revision() -> str:
    """The commit measured, and whether src/ differed from it (other work in the checkout)."""
    head = run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], check=False).stdout
    dirty = run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"], check=False).stdout
    return f"{head.strip() or '?'}{' with uncommitted changes in src/' if dirty.strip() else ''}"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "?"


def report_leases(res: Results, args: argparse.Namespace) -> list[str]:
    ours, theirs = res.leases["Overcast"], res.leases["dnsmasq"]
    lines = ["", f"(1) DHCP lease time, DISCOVER -> ACK: {args.ports} ports, {args.clients} "
                 f"clients at once, {args.rounds} rounds a side (interleaved blocks); CPU busy "
                 f"during the rounds (100% = one core):",
             f"  {'':<10}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'leases':>8}{'lost':>6}"
             f"{'server CPU':>12}{'client CPU (kernel)':>21}"]
    for side, f in (("Overcast", ours), ("dnsmasq", theirs)):
        lines.append(f"  {side:<10}{pct(f.ms, 50):>8.2f}{pct(f.ms, 99):>8.2f}"
                     f"{max(f.ms, default=float('nan')):>8.2f}{len(f.ms):>8}{f.lost:>6}"
                     f"{cpu_share(f.server_cpu, f.wall):>12}{cpu_share(f.gen_cpu, f.wall):>13}"
                     f" ({cpu_share(f.gen_kernel, f.wall)})")
    lines.append(f"  Overcast / dnsmasq: p50 {ratio(pct(ours.ms, 50), pct(theirs.ms, 50))}, "
                 f"p99 {ratio(pct(ours.ms, 99), pct(theirs.ms, 99))}")
    return lines


def report_churn(res: Results, args: argparse.Namespace) -> list[str]:
    lines = ["", f"(2) churn: waves of {' and '.join(map(str, args.wave))} ports on top of the "
                 f"{args.ports}, {args.waves} waves a side in {args.churn_blocks} interleaved blocks; "
                 f"boots/s median of the blocks; seconds per wave by phase:",
             f"  {'':<40}{'boots/s':>9}{'lost':>6}" + "".join(f"{p:>14}" for p in PHASES)
             + f"{'server CPU':>12}"]
    for key, c in res.churn.items():
        total = c.total
        lines.append(f"  {key:<40}{med(c.rates):>9.0f}{c.lost:>6}"
                     + "".join(f"{1000 * s / c.waves:>11.1f} ms" for s in c.phases.values())
                     + f"{cpu_share(c.server_cpu, total):>12}   blocks: "
                     + ", ".join(f"{x:.0f}" for x in c.rates))
    for mode in churn_modes(args):
        a, b = res.churn.get(f"Overcast, {mode[0]}"), res.churn.get(f"dnsmasq, {mode[0]}")
        if a and b:
            lines.append(f"  Overcast / dnsmasq, {mode[0]}: {ratio(med(a.rates), med(b.rates))}")
    return lines


def report_dns(res: Results, args: argparse.Namespace) -> list[str]:
    lines = ["", f"(3) DNS: {args.names} names; dnsperf closed loop ({args.dns_seconds:g} s, "
                 f"{args.dns_outstanding} outstanding) x {args.dns_rounds} rounds, median queries/s; latency at "
                 f"{args.dns_rate} queries/s fixed; CPU busy during the closed-loop runs:",
             f"  {'':<22}{'queries/s':>10}{'p50 ms':>8}{'p99 ms':>8}{'lost':>6}{'wrong':>6}"
             f"{'server CPU':>12}{'dnsperf CPU':>13}"]
    for key, d in res.dns.items():
        lines.append(f"  {key:<22}{med(d.qps):>10.0f}{pct(d.ms, 50):>8.3f}{pct(d.ms, 99):>8.3f}"
                     f"{d.lost:>6}{d.wrong:>6}{cpu_share(d.server_cpu, d.wall):>12}"
                     f"{cpu_share(d.perf_cpu, d.wall):>13}   runs: "
                     + ", ".join(f"{x:.0f}" for x in d.qps))
    for kind in ("hit", "nx"):
        a, b = res.dns.get(f"Overcast, {kind}"), res.dns.get(f"dnsmasq, {kind}")
        if a and b:
            lines.append(f"  Overcast / dnsmasq, {kind}: queries/s {ratio(med(a.qps), med(b.qps))}"
                         f", p99 {ratio(pct(a.ms, 99), pct(b.ms, 99))}")
    return lines


def report_goals(res: Results, args: argparse.Namespace) -> list[str]:
    lines = [""]
    if "Overcast" in res.leases:
        p99 = pct(res.leases["Overcast"].ms, 99)
        lines.append(f"goal: lease p99 <= {GOAL_P99_MS:g} ms: {p99:.2f} ms "
                     f"{'MET' if p99 <= GOAL_P99_MS else 'NOT MET'}")
    for mode, _, wave in churn_modes(args):
        if (c := res.churn.get(f"Overcast, {mode}")) is not None:
            rate = med(c.rates)
            if len(wave) == 1:  # each boot waits for the one before: latency, not a rate
                lines.append(f"no goal: churn ({mode}): {rate:.0f} boots/s, a serial round trip "
                             f"({1000 / rate:.1f} ms a boot)")
                continue
            lines.append(f"goal: >= {GOAL_BOOTS:g} boots/s of churn ({mode}): {rate:.0f} "
                         f"{'MET' if rate >= GOAL_BOOTS else 'NOT MET'}")
    for kind in ("hit", "nx"):
        a, b = res.dns.get(f"Overcast, {kind}"), res.dns.get(f"dnsmasq, {kind}")
        if a and b:
            ok = med(a.qps) >= med(b.qps)
            lines.append(f"goal: DNS queries/s >= dnsmasq's ({kind}): {med(a.qps):.0f} vs "
                         f"{med(b.qps):.0f} {'MET' if ok else 'NOT MET'}")
    return lines


def report(res: Results, args: argparse.Namespace) -> list[str]:
    lines = [f"code: {res.revision}; cpus={os.cpu_count()}, kernel {os.uname().release}; "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"]
    if res.leases:
        lines += report_leases(res, args)
    if res.churn:
        lines += report_churn(res, args)
    if res.dns:
        lines += report_dns(res, args)
    return lines + report_goals(res, args)


# --------------------------------------------------------------------------- main
@dataclass
class Results:
    revision: str = ""
    leases: dict[str, Leases] = field(default_factory=dict)
    churn: dict[str, Churn] = field(default_factory=dict)
    dns: dict[str, DnsFigures] = field(default_factory=dict)


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """SIGTERM/SIGHUP end the run like Ctrl-C does: through ``finally``."""
    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def dhcp_part(env: Env, tool: Path, workdir: Path, args: argparse.Namespace,
              res: Results, closers: list[Closable]) -> None:
    base = list(range(args.ports))
    print(f"building {args.ports} ports for Overcast and for dnsmasq ...", flush=True)
    ours = Ours(env, tool, base, args.timeout_ms)
    closers.append(ours)
    sides: list[DhcpSide] = [ours, Dnsmasq(env, tool, workdir, base, args.timeout_ms)]
    for side in sides:  # first contact, untimed
        lease_rounds(side, base, args.clients, 1, 0, Leases())
        res.leases[side.name] = Leases()
    blocks = 4 if args.quick else 8
    for b in range(blocks):
        for side in sides if b % 2 == 0 else sides[::-1]:
            print(f"  [{b + 1}/{blocks}] leases, {side.name} ...", flush=True)
            lease_rounds(side, base, args.clients, args.rounds // blocks, b * args.rounds // blocks,
                         res.leases[side.name])
    churn_part(sides, args, res)


def churn_modes(args: argparse.Namespace) -> list[tuple[str, bool, list[int]]]:
    """(label, veths made and deleted, the wave's ports) of each churn measurement."""
    out = []
    for i, size in enumerate(args.wave):
        out += [(f"{size} at a time, with veths", True, list(range(CHURN_FIRST, CHURN_FIRST + size))),
                (f"{size} at a time, DHCP side only", False,
                 list(range(PREMADE_FIRST + 100 * i, PREMADE_FIRST + 100 * i + size)))]
    return out


def churn_part(sides: list[DhcpSide], args: argparse.Namespace, res: Results) -> None:
    for mode, veths, wave in churn_modes(args):
        if not veths:
            for side in sides:
                side.make(wave)
        for side in sides:
            res.churn[f"{side.name}, {mode}"] = Churn()
        for b in range(args.churn_blocks):
            for side in sides if b % 2 == 0 else sides[::-1]:
                print(f"  [{b + 1}/{args.churn_blocks}] churn {mode}, {side.name} ...", flush=True)
                churn_block(side, wave, args.waves // args.churn_blocks, veths,
                            res.churn[f"{side.name}, {mode}"])


def dns_part(env: Env, workdir: Path, args: argparse.Namespace, res: Results,
             closers: list[Closable]) -> None:
    print(f"DNS: {args.names} names, Overcast and dnsmasq ...", flush=True)
    bed = DnsBed(env, workdir, args.names)
    closers.append(bed)
    servers = (("Overcast", OURS_DNS), ("dnsmasq", DNSMASQ_DNS))
    for name, _ in servers:
        for kind in ("hit", "nx"):
            res.dns[f"{name}, {kind}"] = DnsFigures()
    for r in range(args.dns_rounds):
        for name, server in servers if r % 2 == 0 else servers[::-1]:
            for kind in ("hit", "nx"):
                print(f"  [{r + 1}/{args.dns_rounds}] DNS {kind}, {name} ...", flush=True)
                bed.dnsperf(server, kind, args.dns_seconds, res.dns[f"{name}, {kind}"],
                            args.dns_outstanding)
    for name, server in servers:
        for kind in ("hit", "nx"):
            figures = res.dns[f"{name}, {kind}"]
            kept = figures.wall, figures.server_cpu, figures.perf_cpu  # CPU: the closed loop's
            bed.dnsperf(server, kind, args.dns_seconds, figures, args.dns_outstanding,
                        args.dns_rate)
            figures.wall, figures.server_cpu, figures.perf_cpu = kept


def options(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer rounds, shorter runs (~1 min)")
    p.add_argument("--ports", type=int, default=500, help="ports on the host")
    p.add_argument("--clients", type=int, default=50, help="clients asking at once")
    p.add_argument("--rounds", type=int, default=200, help="lease rounds a side")
    p.add_argument("--timeout-ms", type=int, default=1000, help="a client's wait for its ACK")
    p.add_argument("--wave", type=lambda text: [int(x) for x in text.split(",")], default=[50, 1],
                   help="ports that appear and go at once (comma-separated sizes, each measured)")
    p.add_argument("--waves", type=int, default=40, help="churn waves a side, in each mode")
    p.add_argument("--churn-blocks", type=int, default=4, help="interleaved blocks of waves")
    p.add_argument("--names", type=int, default=2000, help="ports' names in the DNS zone")
    p.add_argument("--dns-seconds", type=float, default=4.0, help="one dnsperf run")
    p.add_argument("--dns-rounds", type=int, default=3, help="closed-loop runs a side and kind")
    p.add_argument("--dns-outstanding", type=int, default=100,
                   help="dnsperf's queries in flight in the closed loop")
    p.add_argument("--dns-rate", type=int, default=2000, help="queries/s of the latency runs")
    p.add_argument("--only", choices=["all", "dhcp", "dns"], default="all")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.waves, args.churn_blocks = 40, 8, 2
        args.dns_seconds, args.dns_rounds = 2.0, 2
    return args


def main(argv: list[str] | None = None) -> int:
    args = options(argv)
    if os.geteuid() != 0:
        print("dhcp_dns.py needs root (network namespaces)", file=sys.stderr)
        return 2
    for need in ("ip", "cc", "dnsmasq", "dnsperf", "dig"):
        if shutil.which(need) is None:
            print(f"dhcp_dns.py needs {need} (scripts/setup installs it)", file=sys.stderr)
            return 2
    env, res = Env(), Results(revision=revision())
    workdir = Path(tempfile.mkdtemp(prefix="oc-bd-"))
    closers: list[Closable] = []
    started, failed = time.monotonic(), ""
    try:
        with signals_raise():
            tool = compile_generator(workdir)
            if args.only in ("all", "dhcp"):
                dhcp_part(env, tool, workdir, args, res, closers)
            if args.only in ("all", "dns"):
                dns_part(env, workdir, args, res, closers)
    except KeyboardInterrupt:
        print("interrupted: cleaning up", file=sys.stderr)
        return 130
    except BenchError as exc:
        failed = str(exc)
    finally:
        for closer in closers:
            closer.close()
        env.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print("\n".join(report(res, args)))
    print(f"(whole run {time.monotonic() - started:.0f} s)")
    if failed:
        print(f"FAILED, the figures above are what was measured before: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
