"""Routed paths through Overcast's distributed router, beside hand-built ones (root).

One run measures, on this machine's kernel, side by side:

  routed east-west, same host      VM (net1) -> router -> VM (net2), one host
  routed east-west, across hosts   VM (net1, host 1) -> router on host 1 -> VXLAN -> VM (host 2)
  SNAT                             VM -> router (on its SNAT host) -> the internet
  floating IP                      the internet -> FIP on the VM's host -> DNAT -> VM

each as TCP throughput (iperf3, single stream) and ping RTT (p50/p99), and for the two
NAT paths new TCP connections per second (``bench/conn_rate.c``); then the control plane:
``add_router_interface`` -> first routed ping, and ``PUT floatingips/ID {port_id}`` ->
first ping from the internet, p50/p99 over ``--tries`` (each try removes, waits until the
removal is in the kernel, and adds again).

The hand-built counterpart has the same namespaces and hops, made with ip/bridge/nft
commands: VM namespace -> veth -> a bridge per network in the host namespace -> veth into
a router namespace per host (the gateway IPs, static neighbours for every VM, forwarding)
-> veth -> the other network's bridge -> VXLAN (learning off, static FDB) -> the other
host's bridge -> VM.  Its SNAT router has a veth to the host's external bridge with
``snat to`` its address; its floating IP is a /32 on a veth to the external bridge with
DNAT/SNAT rules and a policy route, as docs/routers.md describes Overcast's.  Each host's
external bridge holds its uplink veth to the fabric's external bridge, where the
"internet" namespace (198.51.100.1/24) is.

Overcast runs as its own private instance (never ``overcast lab``): API on a free
127.0.0.1 port over SQLite in a temporary directory, one agent per host namespace started
with ``overcast.lab.processes.in_netns`` (nsenter + unshare: router namespaces an agent
makes under ``ip netns exec`` would die with it), host names ``bench-rt-hN``.  Everything
this script makes is named ``oc-bench-rt-*``; the router namespaces its agents make
(``ocr-*-bench-rt-hN`` with the router mark on ``lo``) and every process it starts (by PID)
are removed at the end, on failure too.

    sudo .venv/bin/python bench/routers.py                       # defaults
    sudo .venv/bin/python bench/routers.py --repeat 5 --seconds 5 --tries 50
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from dataplane import (  # noqa: E402
    Env,
    _echo,
    ip,
    pct,
    socket_in_netns,
    veth,
)
from shell import BenchError, compile_conn_rate, in_ns, ip_batch, run, wait_ready  # noqa: E402

from overcast.lab.fabric import destroy_namespaces, router_namespaces  # noqa: E402
from overcast.lab.processes import in_netns  # noqa: E402
from overcast.plan import names  # noqa: E402

PREFIX = "oc-bench-rt-"
UNDERLAY_MTU = 1500
TENANT_MTU = UNDERLAY_MTU - 50
INET_IP = "198.51.100.1"
INET_NET = "198.51.100.0/24"
HB_GATEWAY_IP = "198.51.100.2"  # the hand-built router's SNAT address
HB_FIP = "198.51.100.50"
NETS = {"net1": ("10.81.1.0/24", "10.81.1.1", 101),
        "net2": ("10.81.2.0/24", "10.81.2.1", 102),
        "net3": ("10.81.3.0/24", "10.81.3.1", 103)}
PORTS = (5200, 5400)  # the FIP VM's security group opens these to the internet
CONN_PORT = 5399
GOAL_PCT = 95.0
GOAL_P99_MS = 300.0
HOSTS = 2


@dataclass(frozen=True)
class Vm:
    name: str
    ns: str
    host: int  # 0-based host index
    net: str
    ip: str
    mac: str
    port_id: str = ""


# --------------------------------------------------------------------------- wiring shared by both
def sysctls(ns: str, *settings: str) -> None:
    run(in_ns(ns, ["sysctl", "-q", "-w", *settings]))


def fabric(env: Env, tag: str) -> tuple[str, str, list[tuple[str, str]]]:
    """Fabric namespace (underlay bridge ``ul``, external bridge ``ext``), the internet
    namespace on ``ext`` and ``HOSTS`` host namespaces, each with ``ul0`` (underlay) and
    ``ex0`` (uplink to ``ext``, unaddressed).  Returns (fabric, internet, [(host, ip)])."""
    fab = env.netns(f"{PREFIX}{tag}-fab")
    ip_batch(fab, [f"link add ul mtu {UNDERLAY_MTU} type bridge", "link set ul up",
                   "link add ext mtu 1500 type bridge", "link set ext up"])
    inet = env.netns(f"{PREFIX}{tag}-inet")
    veth(inet, "eth0", fab, "f-inet", 1500)
    ip("link", "set", "f-inet", "master", "ext", ns=fab)
    ip("addr", "add", f"{INET_IP}/24", "dev", "eth0", ns=inet)
    fast_arp(inet, "eth0")
    hosts = []
    for i in range(1, HOSTS + 1):
        h = env.netns(f"{PREFIX}{tag}-h{i}")
        addr = f"198.18.0.{10 + i}"
        veth(h, "ul0", fab, f"f-ul{i}", UNDERLAY_MTU)
        veth(h, "ex0", fab, f"f-ex{i}", 1500)
        ip_batch(fab, [f"link set f-ul{i} master ul", f"link set f-ex{i} master ext"])
        ip("addr", "add", f"{addr}/24", "dev", "ul0", ns=h)
        sysctls(h, "net.ipv4.ip_forward=1")
        hosts.append((h, addr))
    return fab, inet, hosts


def fast_arp(ns: str, dev: str) -> None:
    """ARP retried every 10 ms (not 1 s): a first-ping time is not ARP-retry bound."""
    sysctls(ns, f"net.ipv4.neigh.{dev}.retrans_time_ms=10",
            f"net.ipv4.neigh.{dev}.mcast_solicit=100")


def vm_namespace(env: Env, vm: Vm, host_ns: str, host_end: str) -> None:
    """The VM: eth0 with its MAC and IP, default route via its subnet's gateway; the
    veth's other end ``host_end`` up in the host namespace (not on any bridge)."""
    env.netns(vm.ns)
    cidr, gw, _vni = NETS[vm.net]
    ip_batch(vm.ns, [f"link add eth0 mtu {TENANT_MTU} address {vm.mac} type veth peer name "
                     f"{host_end} netns {host_ns} mtu {TENANT_MTU}",
                     f"addr add {vm.ip}/{cidr.split('/')[1]} dev eth0", "link set eth0 up",
                     f"route add default via {gw}"])
    fast_arp(vm.ns, "eth0")
    ip("link", "set", host_end, "up", ns=host_ns)


# --------------------------------------------------------------------------- hand-built
class HandBuilt:
    """The same topology, built by hand: see the module docstring."""

    def __init__(self, env: Env, snat_host: int, fip_host: int) -> None:
        self.env = env
        _fab, self.inet, self.hosts = fabric(env, "hb")
        self.vms = vms_layout("hb", snat_host, fip_host, lambda n: f"02:00:00:82:00:{n:02x}")
        self.fip = HB_FIP
        self.gateway_ip = HB_GATEWAY_IP
        for i, (h, _addr) in enumerate(self.hosts):
            self._host(i, h)
        for vm in self.vms.values():
            h = self.hosts[vm.host][0]
            vm_namespace(env, vm, h, f"t-{vm.name}")
            ip("link", "set", f"t-{vm.name}", "master", f"br{vm.net[-1]}", ns=h)
        self._fdb_and_neighbours()
        self._snat(snat_host)
        self._fip(fip_host, self.vms["f"])

    def router(self, i: int) -> str:
        return f"{PREFIX}hb-r{i + 1}"

    def _host(self, i: int, h: str) -> None:
        lines = ["link add brx mtu 1500 type bridge", "link set brx up", "link set ex0 master brx"]
        for net in ("net1", "net2"):
            k, vni = net[-1], NETS[net][2]
            lines += [f"link add br{k} mtu {TENANT_MTU} type bridge",
                      f"link add vx{k} mtu {TENANT_MTU} type vxlan id {vni} "
                      f"local {self.hosts[i][1]} dstport 4789 nolearning",
                      f"link set vx{k} master br{k}", f"link set br{k} up", f"link set vx{k} up"]
        ip_batch(h, lines)
        r = self.env.netns(self.router(i))
        sysctls(r, "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.default.rp_filter=0", "net.ipv4.conf.all.arp_ignore=1",
                "net.ipv4.conf.all.arp_announce=2")
        for net in ("net1", "net2"):
            k, (cidr, gw, _vni) = net[-1], NETS[net]
            run(["bridge", "-n", h, "link", "set", "dev", f"vx{k}", "learning", "off"])
            # a MAC of its own per host (Overcast rewrites routed frames to a per-host MAC)
            veth(r, f"qr{k}", h, f"rq{k}", TENANT_MTU, mac_a=f"02:00:00:83:0{i + 1}:0{k}")
            ip("link", "set", f"rq{k}", "master", f"br{k}", ns=h)
            ip("addr", "add", f"{gw}/{cidr.split('/')[1]}", "dev", f"qr{k}", ns=r)

    def _fdb_and_neighbours(self) -> None:
        """Remote VMs' MACs as static FDB entries (no flooding over the overlay, so each
        host's router answers its own VMs' ARP); every VM as a permanent neighbour of
        every host's router."""
        for vm in self.vms.values():
            k = vm.net[-1]
            for i, (h, _addr) in enumerate(self.hosts):
                ip("neigh", "replace", vm.ip, "lladdr", vm.mac, "dev", f"qr{k}", "nud",
                   "permanent", ns=self.router(i))
                if i != vm.host:
                    dst = self.hosts[vm.host][1]
                    run(["bridge", "-n", h, "fdb", "add", vm.mac, "dev", f"vx{k}", "dst", dst,
                         "self", "static"])
                    run(["bridge", "-n", h, "fdb", "add", vm.mac, "dev", f"vx{k}", "master",
                         "static"])

    def _snat(self, i: int) -> None:
        h, r = self.hosts[i][0], self.router(i)
        veth(r, "qg", h, "rg", 1500)
        ip("link", "set", "rg", "master", "brx", ns=h)
        ip("addr", "add", f"{HB_GATEWAY_IP}/24", "dev", "qg", ns=r)
        ip("route", "add", "default", "via", INET_IP, ns=r)
        nft(r, f"""table ip bench_nat {{
  chain post {{
    type nat hook postrouting priority srcnat;
    oifname "qg" ip saddr 10.81.0.0/16 snat to {HB_GATEWAY_IP}
  }}
}}""")

    def _fip(self, i: int, vm: Vm) -> None:
        h, r = self.hosts[i][0], self.router(i)
        veth(r, "qf", h, "rf", 1500)
        ip("link", "set", "rf", "master", "brx", ns=h)
        ip_batch(r, [f"addr add {HB_FIP}/32 dev qf",
                     "rule add to 10.81.1.0/24 lookup main pref 1000",
                     "rule add to 10.81.2.0/24 lookup main pref 1001",
                     f"rule add from {vm.ip}/32 lookup 16 pref 2000",
                     f"route add default via {INET_IP} dev qf onlink table 16"])
        nft(r, f"""table ip bench_fip {{
  chain pre {{
    type nat hook prerouting priority dstnat;
    ip daddr {HB_FIP} dnat to {vm.ip}
  }}
  chain post {{
    type nat hook postrouting priority srcnat;
    oifname "qf" ip saddr {vm.ip} snat to {HB_FIP}
  }}
}}""")


def nft(ns: str, ruleset: str) -> None:
    run(in_ns(ns, ["nft", "-f", "-"]), stdin=ruleset)


def vms_layout(tag: str, snat_host: int, fip_host: int, mac: Callable[[int], str]
               ) -> dict[str, Vm]:
    """a (net1, host 1) is the east-west client; b (net2, host 1) and c (net2, host 2) its
    servers; s (net1) is on the SNAT host; f (net2, the FIP's VM) on ``fip_host``."""
    spec = {"a": (0, "net1", "10.81.1.11"), "b": (0, "net2", "10.81.2.11"),
            "c": (1, "net2", "10.81.2.12"), "s": (snat_host, "net1", "10.81.1.14"),
            "f": (fip_host, "net2", "10.81.2.15")}
    return {name: Vm(name, f"{PREFIX}{tag}-vm-{name}", host, net, addr, mac(n + 1),
                     str(uuid.uuid4()))
            for n, (name, (host, net, addr)) in enumerate(spec.items())}


# --------------------------------------------------------------------------- Overcast
class Overcast:
    """A private Overcast: API + one agent per host, external network, a router with
    net1 and net2 and a gateway, the VMs of :func:`vms_layout` and a floating IP."""

    def __init__(self, env: Env, workdir: Path) -> None:
        self.env = env
        self.workdir = workdir
        self.store_url = f"sqlite:///{workdir}/store.db"
        _fab, self.inet, self.hosts = fabric(env, "ov")
        self.host_names = [f"bench-rt-h{i}" for i in range(1, HOSTS + 1)]
        self._start_processes()
        self.ext = self._external()
        self.subnets = {net: self._tenant_net(net) for net in NETS}
        self.router = self.call("POST", "/v2.0/routers", {"router": {"name": "bench-rt"}}
                                )["router"]["id"]
        for net in ("net1", "net2"):
            self.add_interface(net)
        info = self.call("PUT", f"/v2.0/routers/{self.router}", {"router": {
            "external_gateway_info": {"network_id": self.ext}}})["router"]["external_gateway_info"]
        self.gateway_ip = str(info["external_fixed_ips"][0]["ip_address"])
        self.snat_host = self._snat_host()
        self.fip_host = 1 - self.snat_host
        self.vms = vms_layout("ov", self.snat_host, self.fip_host,
                              lambda n: f"fa:16:3e:b7:00:{n:02x}")
        for vm in self.vms.values():
            self.plug(vm)
        self._open_to_internet(self.vms["f"])
        self.fip_id, self.fip = self._floating_ip(self.vms["f"])
        self.wait_active([vm.port_id for vm in self.vms.values()])

    # ------------------------------------------------------------------ processes
    def _start_processes(self) -> None:
        py = sys.executable
        os.environ["PYTHONPATH"] = str(ROOT / "src")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.env.start([py, "-m", "overcast.api", "--bind", f"127.0.0.1:{port}", "--store",
                        self.store_url, "--underlay-mtu", str(UNDERLAY_MTU),
                        "--default-quota", "all=-1"],
                       self.workdir / "api.log")
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        self._wait(lambda: self.http.get("/v2.0/networks").status_code == 200, "API", 30)
        for (h, addr), name in zip(self.hosts, self.host_names, strict=True):
            argv = [py, "-m", "overcast.agent", "--host", name, "--store", self.store_url,
                    "--underlay-ip", addr, "--resync-interval", "10", "--log-level", "WARNING",
                    "--physical-network", "external=ex0"]
            self.env.start(in_netns(h, argv), self.workdir / f"agent-{name}.log")
        self._wait(lambda: set(self.host_names) <= {
            a.get("host") for a in self.call("GET", "/v2.0/agents")["agents"] if a.get("alive")},
            "agents", 30)

    def _wait(self, ok: Callable[[], bool], what: str, timeout: float) -> None:
        wait_ready(ok, what, timeout, self.env.procs, self.workdir, (httpx.HTTPError, BenchError))

    def call(self, method: str, path: str, body: Any = None) -> Any:
        r = self.http.request(method, path, json=body)
        if r.status_code >= 400:
            raise BenchError(f"API {method} {path}: {r.status_code} {r.text[:300]}")
        return r.json() if r.content else None

    # ------------------------------------------------------------------ the model
    def _external(self) -> str:
        net = self.call("POST", "/v2.0/networks", {"network": {
            "name": "bench-rt-public", "provider:network_type": "flat",
            "provider:physical_network": "external", "router:external": True,
            "shared": True}})["network"]
        self.call("POST", "/v2.0/subnets", {"subnet": {
            "network_id": net["id"], "cidr": INET_NET, "gateway_ip": INET_IP, "ip_version": 4,
            "name": "bench-rt-public"}})
        return str(net["id"])

    def _tenant_net(self, net: str) -> dict[str, str]:
        cidr, gw, _vni = NETS[net]
        n = self.call("POST", "/v2.0/networks", {"network": {"name": f"bench-rt-{net}"}}
                      )["network"]
        if int(n["mtu"]) != TENANT_MTU:
            raise BenchError(f"network MTU {n['mtu']}, the hand-built side uses {TENANT_MTU}")
        s = self.call("POST", "/v2.0/subnets", {"subnet": {
            "network_id": n["id"], "cidr": cidr, "gateway_ip": gw, "ip_version": 4,
            "name": f"bench-rt-{net}"}})["subnet"]
        return {"network": n["id"], "subnet": s["id"]}

    def add_interface(self, net: str) -> str:
        return str(self.call("PUT", f"/v2.0/routers/{self.router}/add_router_interface",
                             {"subnet_id": self.subnets[net]["subnet"]})["port_id"])

    def remove_interface(self, net: str) -> None:
        self.call("PUT", f"/v2.0/routers/{self.router}/remove_router_interface",
                  {"subnet_id": self.subnets[net]["subnet"]})

    def _snat_host(self) -> int:
        """The host whose agent does this router's SNAT (the agents list says)."""
        found: list[int] = []

        def listed() -> bool:
            for a in self.call("GET", "/v2.0/agents")["agents"]:
                if self.router in a.get("configurations", {}).get("snat_routers", []):
                    found.append(self.host_names.index(a["host"]))
                    return True
            return False
        self._wait(listed, "the router's SNAT host in the agents list", 30)
        return found[0]

    def plug(self, vm: Vm) -> None:
        """Wire the VM's namespace (host end named tap + 11 of the port id), then create
        its port bound to its host, as ``lab vm create`` does."""
        vm_namespace(self.env, vm, self.hosts[vm.host][0], names.tap_name(vm.port_id))
        sub = self.subnets[vm.net]
        self.call("POST", "/v2.0/ports", {"port": {
            "id": vm.port_id, "network_id": sub["network"], "mac_address": vm.mac,
            "fixed_ips": [{"subnet_id": sub["subnet"], "ip_address": vm.ip}],
            "binding:host_id": self.host_names[vm.host], "device_owner": "compute:bench",
            "device_id": f"bench-rt-{vm.name}", "name": f"bench-rt-{vm.name}"}})

    def _open_to_internet(self, vm: Vm) -> None:
        """A group of its own lets ICMP and the bench's TCP ports in from anywhere."""
        group = self.call("POST", "/v2.0/security-groups", {"security_group": {
            "name": "bench-rt-from-internet"}})["security_group"]["id"]
        for proto, lo, hi in (("icmp", None, None), ("tcp", *PORTS)):
            self.call("POST", "/v2.0/security-group-rules", {"security_group_rule": {
                "security_group_id": group, "direction": "ingress", "protocol": proto,
                "port_range_min": lo, "port_range_max": hi, "remote_ip_prefix": "0.0.0.0/0"}})
        port = self.call("GET", f"/v2.0/ports/{vm.port_id}")["port"]
        self.call("PUT", f"/v2.0/ports/{vm.port_id}", {"port": {
            "security_groups": [*port["security_groups"], group]}})

    def _floating_ip(self, vm: Vm) -> tuple[str, str]:
        fip = self.call("POST", "/v2.0/floatingips", {"floatingip": {
            "floating_network_id": self.ext, "port_id": vm.port_id}})["floatingip"]
        return str(fip["id"]), str(fip["floating_ip_address"])

    def set_fip(self, port_id: str | None) -> None:
        self.call("PUT", f"/v2.0/floatingips/{self.fip_id}", {"floatingip": {"port_id": port_id}})

    def wait_active(self, port_ids: list[str], timeout: float = 60) -> None:
        def active() -> bool:
            return all(self.call("GET", f"/v2.0/ports/{p}")["port"]["status"] == "ACTIVE"
                       for p in port_ids)
        self._wait(active, f"ports {', '.join(port_ids)} ACTIVE", timeout)

    def router_ns(self, host: int) -> str:
        return names.router_netns(self.router, self.host_names[host])


def close(env: Env, host_names: list[str]) -> None:
    """Agents (by PID) first, then the router namespaces they made (named for our hosts
    and marked), then everything :class:`Env` made."""
    try:
        for p in list(reversed(env.procs)):
            env.stop(p)
        left = destroy_namespaces(router_namespaces(host_names))
        if left:
            print(f"cleanup: deleted router namespaces {', '.join(left)}")
    finally:
        env.close()


# --------------------------------------------------------------------------- measurements
@dataclass
class Path2:
    """One path measured on both sides: Overcast (``ov``) and hand-built (``hb``)."""

    label: str
    gbps: dict[str, list[float]] = field(default_factory=lambda: {"ov": [], "hb": []})
    p50: dict[str, list[float]] = field(default_factory=lambda: {"ov": [], "hb": []})
    p99: dict[str, list[float]] = field(default_factory=lambda: {"ov": [], "hb": []})
    conns: dict[str, list[float]] = field(default_factory=lambda: {"ov": [], "hb": []})


@dataclass(frozen=True)
class Ends:
    """Who talks to whom on one side: server namespace and the address it binds, the
    address the client connects to, client namespace."""

    server: str
    bind: str
    target: str
    client: str


_port = [PORTS[0]]


def wait_listening(ns: str, port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        if run(in_ns(ns, ["ss", "-Hltn", f"sport = :{port}"]), check=False).stdout.strip():
            return
        time.sleep(0.02)
    raise BenchError(f"nothing listens on {port} in {ns}")


def iperf(env: Env, e: Ends, seconds: float) -> float:
    _port[0] = _port[0] + 1 if _port[0] < CONN_PORT - 1 else PORTS[0] + 1
    port = _port[0]
    srv = env.start(in_ns(e.server, ["iperf3", "-s", "-1", "-B", e.bind, "-p", str(port)]),
                    Path(os.devnull))
    try:
        wait_listening(e.server, port, time.monotonic() + 10)
        p = run(in_ns(e.client, ["iperf3", "-c", e.target, "-p", str(port), "-t", str(seconds),
                                 "-J"]), check=False, timeout=seconds + 30)
        try:
            data = json.loads(p.stdout)
        except ValueError:
            raise BenchError(f"iperf3 {e.client} -> {e.target}: {p.stderr[-300:]}") from None
        if "error" in data:
            raise BenchError(f"iperf3 {e.client} -> {e.target}: {data['error']}")
        return float(data["end"]["sum_received"]["bits_per_second"]) / 1e9
    finally:
        env.stop(srv)


def ping(ns: str, dst: str, count: int) -> tuple[float, float]:
    p = run(in_ns(ns, ["ping", "-n", "-c", str(count), "-i", "0.01",
                       "-W", "1", dst]), check=False, timeout=count + 30)
    times = sorted(float(m) for m in re.findall(r"time=([\d.]+) ms", p.stdout))
    if len(times) < count * 9 // 10:
        raise BenchError(f"ping {ns} -> {dst}: {len(times)}/{count} answers\n{p.stdout[-400:]}")
    return pct(times, 50), pct(times, 99)


def conn_rate(env: Env, tool: Path, e: Ends, seconds: float) -> float:
    srv = env.start(in_ns(e.server, [str(tool), "server", e.bind, str(CONN_PORT)]),
                    Path(os.devnull))
    try:
        wait_listening(e.server, CONN_PORT, time.monotonic() + 10)
        out = run(in_ns(e.client, [str(tool), "client", e.target, str(CONN_PORT),
                                   str(seconds)]), timeout=seconds + 30).stdout.split()
        done, elapsed, failed = int(out[0]), float(out[1]), int(out[2])
        if failed > done // 100:
            raise BenchError(f"conn_rate {e.client} -> {e.target}: {failed} of "
                             f"{done + failed} connections failed")
        return done / elapsed
    finally:
        env.stop(srv)


def ends(side: Overcast | HandBuilt) -> dict[str, Ends]:
    v = side.vms
    return {
        "east-west, same host": Ends(v["b"].ns, v["b"].ip, v["b"].ip, v["a"].ns),
        "east-west, across hosts": Ends(v["c"].ns, v["c"].ip, v["c"].ip, v["a"].ns),
        "SNAT (VM -> internet)": Ends(side.inet, INET_IP, INET_IP, v["s"].ns),
        "floating IP (internet -> VM)": Ends(v["f"].ns, v["f"].ip, side.fip, side.inet),
    }


def until_ping(ns: str, dst: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while run(in_ns(ns, ["ping", "-n", "-c", "1", "-W", "0.2", dst]), check=False).returncode:
        if time.monotonic() > deadline:
            raise BenchError(f"{ns} -> {dst}: no answer in {timeout:g}s")


def echo_sources(ns: str, pinger: str, dst: str) -> set[str]:
    """Source addresses of the echo requests that ``ns`` sees while ``pinger`` pings
    ``dst`` (a raw ICMP socket in ``ns`` gets a copy of each)."""
    sock = socket_in_netns(ns)
    try:
        run(in_ns(pinger, ["ping", "-n", "-c", "3", "-i", "0.05", "-W", "1", dst]))
        seen = set()
        while True:
            try:
                pkt = sock.recv(2048)
            except BlockingIOError:
                return seen
            if pkt[(pkt[0] & 0x0F) * 4] == 8:
                seen.add(socket.inet_ntoa(pkt[12:16]))
    finally:
        sock.close()


def underlay_rx(host_ns: str) -> int:
    link = json.loads(run(["ip", "-n", host_ns, "-j", "-s", "link", "show", "ul0"]).stdout)
    return int(link[0]["stats64"]["rx"]["packets"])


def check_paths(side: Overcast | HandBuilt) -> None:
    """Each path is what its label says: the internet sees SNAT from the router's gateway
    address and the FIP VM's traffic from its floating IP; the cross-host path crosses
    the underlay."""
    v, inet = side.vms, side.inet
    for vm, want in ((v["s"], side.gateway_ip), (v["f"], side.fip)):
        seen = echo_sources(inet, vm.ns, INET_IP)
        if seen != {want}:
            raise BenchError(f"{vm.ns} -> the internet: sources {sorted(seen)}, not {want}")
    before = underlay_rx(side.hosts[1][0])
    run(in_ns(v["a"].ns, ["ping", "-n", "-c", "20", "-i", "0.01", "-W", "1", v["c"].ip]))
    if underlay_rx(side.hosts[1][0]) - before < 20:
        raise BenchError(f"{v['a'].ns} -> {v['c'].ip}: fewer than 20 frames on host 2's "
                         "underlay: not the cross-host path")


def traffic(env: Env, sides: dict[str, dict[str, Ends]], tool: Path,
            args: argparse.Namespace) -> list[Path2]:
    """Every path on both sides, interleaved round by round (noise hits both alike)."""
    paths = [Path2(label) for label in sides["ov"]]
    nat = {"SNAT (VM -> internet)", "floating IP (internet -> VM)"}
    for r in range(args.repeat):
        for pr in paths:
            for side in ("ov", "hb"):
                e = sides[side][pr.label]
                print(f"  [{r + 1}/{args.repeat}] {side} {pr.label} ...", flush=True)
                pr.gbps[side].append(iperf(env, e, args.seconds))
                p50, p99 = ping(e.client, e.target, args.pings)
                pr.p50[side].append(p50)
                pr.p99[side].append(p99)
                if pr.label in nat and args.conn_seconds > 0:
                    pr.conns[side].append(conn_rate(env, tool, e, args.conn_seconds))
    return paths


# --------------------------------------------------------------------------- control plane
@dataclass
class Latency:
    label: str
    from_return: list[float] = field(default_factory=list)  # ms from the API's answer
    from_call: list[float] = field(default_factory=list)  # ms from sending the request
    misses: int = 0


def _wait_gone(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not done after {timeout:g}s")
        time.sleep(0.02)


def _link_gone(ns: str, dev: str) -> bool:
    return run(["ip", "-n", ns, "link", "show", dev], check=False).returncode != 0


_ident = [0]


def first_reply(sock: socket.socket, dst: str, deadline: float, interval: float = 0.002
                ) -> float | None:
    """Echo requests to ``dst`` every ``interval``, each with an ICMP id of its own, until
    the first reply to any of them; returns its time.  One id per request, unlike
    dataplane.first_pings: a request sent before the path existed (routed elsewhere, e.g.
    out through SNAT) leaves a conntrack entry that a later request with the same id would
    follow, so one id for the whole try measures conntrack's timeout, not the router."""
    sent: set[int] = set()
    while time.monotonic() < deadline:
        _ident[0] = (_ident[0] + 1) & 0xFFFF
        sent.add(_ident[0])
        try:
            sock.sendto(_echo(_ident[0], 1), (dst, 0))
        except OSError:
            pass  # no route yet: next round
        end = time.monotonic() + interval
        while (left := end - time.monotonic()) > 0:
            if not select.select([sock], [], [], left)[0]:
                continue
            try:
                while True:
                    pkt = sock.recv(2048)
                    ihl = (pkt[0] & 0x0F) * 4
                    if pkt[ihl] == 0 and int.from_bytes(pkt[ihl + 4:ihl + 6], "big") in sent:
                        return time.monotonic()
            except BlockingIOError:
                pass
    return None


def _timed(lat: Latency, sock: socket.socket, dst: str, action: Callable[[], Any]) -> None:
    t_call = time.monotonic()
    action()
    t_ret = time.monotonic()
    got = first_reply(sock, dst, t_call + 10)
    if got is None:
        lat.misses += 1
        return
    lat.from_call.append((got - t_call) * 1000)
    lat.from_return.append((got - t_ret) * 1000)


def add_interface_latency(ov: Overcast, tries: int) -> Latency:
    """net3 (VM d on the non-SNAT host) added to the router, pinged from s (net1, on the
    SNAT host): both hosts' routers must have the new interface (the request is routed on
    s's host, the reply on d's).  The client is on the SNAT host, where the requests sent
    before the interface exists leave by the gateway port: elsewhere they went to the SNAT
    port on a tenant subnet, and before 2592686 the router answered a client on that subnet
    with an ICMP redirect to it, which sent the client's later requests to the SNAT host's
    router for minutes (the first ping then showed another router).  Between tries the
    interface is removed and its qr- device waited out of both router namespaces; d's
    neighbour cache is flushed (the new interface port has a new gateway MAC, which a real
    VM would learn only after its stale entry times out)."""
    lat = Latency("add_router_interface -> first routed ping")
    d = Vm("d", f"{PREFIX}ov-vm-d", ov.fip_host, "net3", "10.81.3.12", "fa:16:3e:b7:00:20",
           str(uuid.uuid4()))
    ov.plug(d)
    ov.wait_active([d.port_id])
    sock = socket_in_netns(ov.vms["s"].ns)
    try:
        for _ in range(tries):
            ip("neigh", "flush", "dev", "eth0", ns=d.ns)
            box: dict[str, str] = {}
            _timed(lat, sock, d.ip,
                   lambda box=box: box.setdefault("port", ov.add_interface("net3")))
            qr = names.router_if_name(box["port"])
            ov.remove_interface("net3")
            _wait_gone(lambda qr=qr: all(_link_gone(ov.router_ns(h), qr) for h in range(HOSTS)),
                       f"interface {qr} removed from the router namespaces")
    finally:
        sock.close()
    return lat


def fip_latency(ov: Overcast, tries: int) -> Latency:
    """The floating IP disassociated (until its address is gone from the VM's host's
    router namespace), then associated again: time to the first echo reply to the
    internet namespace."""
    lat = Latency("floating ip set -> first ping from the internet")
    f = ov.vms["f"]
    sock = socket_in_netns(ov.inet)
    ns = ov.router_ns(f.host)

    def fip_gone() -> bool:
        p = run(["ip", "-n", ns, "-4", "-o", "addr", "show"], check=False)
        return p.returncode != 0 or f" {ov.fip}/" not in p.stdout
    try:
        for _ in range(tries):
            ov.set_fip(None)
            _wait_gone(fip_gone, f"floating IP {ov.fip} removed from {ns}")
            _timed(lat, sock, ov.fip, lambda: ov.set_fip(f.port_id))
    finally:
        sock.close()
    return lat


# --------------------------------------------------------------------------- report
def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def report(paths: list[Path2], lats: list[Latency], args: argparse.Namespace,
           quiet: str) -> list[str]:
    out = [f"routers: tenant MTU {TENANT_MTU} (underlay {UNDERLAY_MTU}), external 1500; iperf3 "
           f"{args.seconds:g}s single stream, {args.pings} pings at 10 ms, conn_rate "
           f"{args.conn_seconds:g}s; median of {args.repeat} interleaved rounds; "
           f"cpus={os.cpu_count()}, kernel {os.uname().release}; Overcast's firewall "
           f"on (routers need it), the hand-built side has none; {quiet}"]
    head = (f"{'path':<30}{'side':<11}{'Gbit/s':>8}{'best':>7}{'RTT p50':>9}{'p99 ms':>8}"
            f"{'conn/s':>9}{'ov/hb':>8}{'goal':>15}")
    out += ["", head, "-" * len(head)]
    goals: list[tuple[str, bool]] = []
    for pr in paths:
        ratio = med(pr.gbps["ov"]) / med(pr.gbps["hb"]) * 100
        for side, name in (("hb", "hand-built"), ("ov", "Overcast")):
            conns = f"{med(pr.conns[side]):>9.0f}" if pr.conns[side] else f"{'':>9}"
            line = (f"{pr.label if side == 'hb' else '':<30}{name:<11}{med(pr.gbps[side]):>8.2f}"
                    f"{max(pr.gbps[side]):>7.2f}{med(pr.p50[side]):>9.3f}{med(pr.p99[side]):>8.3f}"
                    f"{conns}")
            if side == "ov":
                ok = ratio >= GOAL_PCT
                goals.append((f"{pr.label}: throughput {ratio:.1f}% of hand-built (>= 95%)", ok))
                line += f"{ratio:>7.1f}%{'PASS' if ok else 'FAIL':>15}"
            out.append(line)
        for side in ("hb", "ov"):
            out.append(f"{'':<30}{side} runs Gbit/s: "
                       + ", ".join(f"{x:.2f}" for x in pr.gbps[side]))
        if pr.conns["ov"]:
            out.append(f"{'':<30}new connections/s Overcast/hand-built: "
                       f"{med(pr.conns['ov']) / med(pr.conns['hb']) * 100:.1f}% (runs ov "
                       + ", ".join(f"{x:.0f}" for x in pr.conns["ov"]) + "; hb "
                       + ", ".join(f"{x:.0f}" for x in pr.conns["hb"]) + ")")
    if lats:
        head = (f"{'control plane (ms)':<48}{'n':>4}{'p50':>7}{'p99':>7}{'max':>7}"
                f"{'p50/p99 from call':>20}{'missed':>8}")
        out += ["", head, "-" * len(head)]
    for lat in lats:
        xs = lat.from_return
        ok = bool(xs) and pct(xs, 99) <= GOAL_P99_MS and lat.misses == 0
        goals.append((f"{lat.label}: p99 {pct(xs, 99):.0f} ms (<= {GOAL_P99_MS:.0f} ms)", ok))
        out.append(f"{lat.label:<48}{len(xs):>4}{pct(xs, 50):>7.0f}{pct(xs, 99):>7.0f}"
                   f"{max(xs, default=float('nan')):>7.0f}"
                   f"{pct(lat.from_call, 50):>12.0f}/{pct(lat.from_call, 99):<7.0f}"
                   f"{lat.misses:>8}")
    if lats:
        out.append("  times from the API's answer to the first echo reply (raw-socket pings, "
                   "a new ICMP id each, every 2 ms; VMs and the internet retry ARP every "
                   "10 ms); 'from call': from sending the request")
    out += ["", "goals:"] + [f"  {'PASS' if ok else 'FAIL'}  {what}" for what, ok in goals]
    return out


def loadavg() -> str:
    return "load " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=5.0, help="iperf3 duration per test")
    p.add_argument("--repeat", type=int, default=3, help="rounds, interleaved (median)")
    p.add_argument("--pings", type=int, default=200, help="pings per RTT measurement")
    p.add_argument("--conn-seconds", type=float, default=3.0,
                   help="conn_rate duration per NAT path (0: skip)")
    p.add_argument("--tries", type=int, default=50, help="tries per control-plane latency")
    p.add_argument("--keep-logs", action="store_true")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("routers.py needs root (network namespaces)", file=sys.stderr)
        return 2
    for tool in ("ip", "bridge", "nft", "iperf3", "ping", "ss", "nsenter", "unshare"):
        if shutil.which(tool) is None:
            print(f"routers.py needs {tool}", file=sys.stderr)
            return 2
    env = Env()
    workdir = Path(tempfile.mkdtemp(prefix="oc-bench-rt-"))
    host_names = [f"bench-rt-h{i}" for i in range(1, HOSTS + 1)]
    try:
        before = loadavg()
        tool = compile_conn_rate(workdir)
        print("starting a private Overcast (API + 2 agents) and its router ...", flush=True)
        ov = Overcast(env, workdir)
        print(f"  SNAT host: {ov.host_names[ov.snat_host]}; floating IP {ov.fip} on "
              f"{ov.host_names[ov.fip_host]}", flush=True)
        print("building the hand-built counterpart ...", flush=True)
        hb = HandBuilt(env, ov.snat_host, ov.fip_host)
        sides = {"ov": ends(ov), "hb": ends(hb)}
        for side in sides.values():
            for e in side.values():
                until_ping(e.client, e.target)
        check_paths(ov)
        check_paths(hb)
        paths = traffic(env, sides, tool, args)
        lats = []
        if args.tries > 0:
            print(f"control plane: {args.tries} tries each ...", flush=True)
            lats = [add_interface_latency(ov, args.tries), fip_latency(ov, args.tries)]
        quiet = f"{before} before, {loadavg()} after"
    finally:
        close(env, host_names)
        if args.keep_logs:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\n".join(["", *report(paths, lats, args, quiet)]))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BenchError, subprocess.SubprocessError) as exc:
        print(f"routers.py: {exc}", file=sys.stderr)
        sys.exit(1)
