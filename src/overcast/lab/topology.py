"""Lab topologies: which hypervisor hosts exist and how the underlay looks.

YAML format (every key optional)::

    hosts:                 # a list of hosts, or just a count (``hosts: 3``)
      - name: host1        # defaults to hostN; N-th host gets 198.18.0.(10+N)
      - name: host2
        underlay_ip: 198.18.0.12
    underlay_mtu: 1500     # 9000 gives a jumbo underlay (tenant MTU 1500+)
    api_bind: 127.0.0.1:9696
    resync_interval: 10    # seconds between the agents' full resyncs
    lease_ttl: 2           # seconds an agent's liveness outlasts it (a router's SNAT moves
                           # to another host this long after its SNAT host's agent stops)
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from overcast.lab.ipcmd import LabError

UNDERLAY_NET = ipaddress.ip_network("198.18.0.0/24")
FABRIC_IP = "198.18.0.1"
EXTERNAL_NET = ipaddress.ip_network("203.0.113.0/24")
EXTERNAL_GW = "203.0.113.1"
# the public zone the lab's internet serves (overcast public-dns in oc-ext, on EXTERNAL_GW)
PUBLIC_ZONE = "cloud.example"
# the physical network every lab host maps to its external NIC (oc-ex0): a flat network on it
# reaches the lab's internet; the API knows nothing of it until an operator creates one
EXTERNAL_PHYSNET = "external"
DEFAULT_HOSTS = 3


@dataclass(frozen=True)
class LabHost:
    name: str
    index: int
    underlay_ip: str

    @property
    def netns(self) -> str:
        return f"oc-{self.name}"

    @property
    def fabric_port(self) -> str:
        return f"oc-fab-h{self.index}"


@dataclass(frozen=True)
class Topology:
    hosts: tuple[LabHost, ...] = field(default_factory=tuple)
    underlay_mtu: int = 1500
    api_bind: str = "127.0.0.1:9696"
    resync_interval: float = 10.0
    lease_ttl: float = 2.0
    # the capacity (kbit/s) each agent is told its underlay NIC has (--qos-uplink): far
    # below what the lab's veths carry, so that the uplink's htb is what limits, and
    # only there while some port has a minimum bandwidth rule (docs/qos.md)
    uplink_kbps: int = 200_000

    @property
    def api_url(self) -> str:
        return f"http://{self.api_bind}"

    def host(self, name: str) -> LabHost:
        for h in self.hosts:
            if h.name == name:
                return h
        raise LabError(f"no host {name!r} in the lab (hosts: {', '.join(h.name for h in self.hosts)})")


def make_host(index: int, name: str | None = None, underlay_ip: str | None = None) -> LabHost:
    if not 1 <= index <= 200:
        raise LabError(f"host index {index} out of range 1..200")
    address = underlay_ip or str(UNDERLAY_NET.network_address + 10 + index)
    if ipaddress.ip_address(address) not in UNDERLAY_NET:
        raise LabError(f"underlay_ip {address} of host {name} is not in {UNDERLAY_NET}")
    return LabHost(name=name or f"host{index}", index=index, underlay_ip=address)


def default_topology(n_hosts: int = DEFAULT_HOSTS) -> Topology:
    return Topology(hosts=tuple(make_host(i) for i in range(1, n_hosts + 1)))


def parse_topology(data: dict[str, Any]) -> Topology:
    raw_hosts = data.get("hosts", DEFAULT_HOSTS)
    if isinstance(raw_hosts, int):
        raw_hosts = [{} for _ in range(raw_hosts)]
    if not isinstance(raw_hosts, list) or not raw_hosts:
        raise LabError("topology: 'hosts' must be a non-empty list or a count")
    hosts = []
    for i, entry in enumerate(raw_hosts, start=1):
        entry = entry if isinstance(entry, dict) else {"name": str(entry)}
        hosts.append(make_host(i, entry.get("name"), entry.get("underlay_ip")))
    names = [h.name for h in hosts]
    if len(set(names)) != len(names):
        raise LabError(f"topology: duplicate host names in {names}")
    mtu = int(data.get("underlay_mtu", 1500))
    if not 1280 <= mtu <= 65000:
        raise LabError(f"topology: underlay_mtu {mtu} out of range 1280..65000")
    return Topology(
        hosts=tuple(hosts),
        underlay_mtu=mtu,
        api_bind=str(data.get("api_bind", "127.0.0.1:9696")),
        resync_interval=float(data.get("resync_interval", 10.0)),
        lease_ttl=_lease_ttl(data.get("lease_ttl", 2.0)),
        uplink_kbps=_uplink_kbps(data.get("uplink_kbps", 200_000)),
    )


def _uplink_kbps(value: Any) -> int:
    if not isinstance(value, int) or not 1_000 <= value <= 100_000_000:
        raise LabError(f"topology: uplink_kbps {value!r} is not a whole number of kbit/s in "
                       "1000..100000000")
    return value


def _lease_ttl(value: Any) -> float:
    try:
        ttl = float(value)
    except (TypeError, ValueError):
        raise LabError(f"topology: lease_ttl {value!r} is not a number of seconds") from None
    if not 0.5 <= ttl <= 300:
        raise LabError(f"topology: lease_ttl {ttl:g} out of range 0.5..300 seconds")
    return ttl


def load_topology(path: str | Path | None) -> Topology:
    if path is None:
        return default_topology()
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise LabError(f"cannot read topology {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise LabError(f"topology {path}: expected a mapping at top level")
    return parse_topology(data)


def topology_to_dict(topo: Topology) -> dict[str, Any]:
    return {
        "hosts": [{"name": h.name, "underlay_ip": h.underlay_ip} for h in topo.hosts],
        "underlay_mtu": topo.underlay_mtu,
        "api_bind": topo.api_bind,
        "resync_interval": topo.resync_interval,
        "lease_ttl": topo.lease_ttl,
        "uplink_kbps": topo.uplink_kbps,
    }
