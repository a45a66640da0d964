"""The emulated data center's wiring: fabric, hypervisor hosts, external network.

* ``oc-fabric``: the top-of-rack switch. Bridge ``oc-underlay`` (198.18.0.1/24)
  joins every host's underlay NIC; bridge ``oc-external`` joins every host's
  external NIC and the "internet".
* ``oc-hostN``: a hypervisor. ``oc-ul0`` (underlay, 198.18.0.(10+N)/24) and
  ``oc-ex0`` (unaddressed, the physical side of a flat external network).
* ``oc-ext``: the internet, ``oc-ext0`` = 203.0.113.1/24.

Every link made here carries ifalias ``overcast-lab`` (both veth ends), every
namespace is recorded in the lab state before anything goes into it.
"""

from __future__ import annotations

from overcast.lab import ipcmd
from overcast.lab.ipcmd import LAB_ALIAS, ip
from overcast.lab.state import LabState
from overcast.lab.topology import EXTERNAL_GW, EXTERNAL_NET, FABRIC_IP, UNDERLAY_NET, LabHost
from overcast.plan import names as plan_names
from overcast.plan.leases import SERVER_MAC

FABRIC_NS = "oc-fabric"
EXT_NS = "oc-ext"
UNDERLAY_BR = "oc-underlay"
EXTERNAL_BR = "oc-external"
HOST_UNDERLAY_IF = "oc-ul0"
HOST_EXTERNAL_IF = "oc-ex0"


def make_namespace(state: LabState, name: str) -> None:
    if ipcmd.netns_exists(name):
        raise ipcmd.LabError(f"namespace {name} already exists; run 'overcast lab down' first")
    state.add_namespace(name)
    ipcmd.netns_add(name)


def veth(ns_a: str, name_a: str, ns_b: str, name_b: str, mtu: int) -> None:
    """A veth pair between two namespaces, both ends marked and up."""
    ip("link", "add", name_a, "mtu", str(mtu), "type", "veth", "peer", "name", name_b,
       "netns", ns_b, "mtu", str(mtu), ns=ns_a)
    for ns, name in ((ns_a, name_a), (ns_b, name_b)):
        ip("link", "set", name, "alias", LAB_ALIAS, "up", ns=ns)


def bridge(ns: str, name: str, mtu: int, address: str | None = None) -> None:
    ip("link", "add", name, "mtu", str(mtu), "type", "bridge", ns=ns)
    ip("link", "set", name, "alias", LAB_ALIAS, "up", ns=ns)
    if address:
        ip("addr", "add", address, "dev", name, ns=ns)


def build_fabric(state: LabState, underlay_mtu: int) -> None:
    make_namespace(state, FABRIC_NS)
    bridge(FABRIC_NS, UNDERLAY_BR, underlay_mtu, f"{FABRIC_IP}/{UNDERLAY_NET.prefixlen}")
    bridge(FABRIC_NS, EXTERNAL_BR, 1500)
    make_namespace(state, EXT_NS)
    veth(EXT_NS, "oc-ext0", FABRIC_NS, "oc-fab-ext", 1500)
    ip("link", "set", "oc-fab-ext", "master", EXTERNAL_BR, ns=FABRIC_NS)
    ip("addr", "add", f"{EXTERNAL_GW}/{EXTERNAL_NET.prefixlen}", "dev", "oc-ext0", ns=EXT_NS)


def build_host(state: LabState, host: LabHost, underlay_mtu: int) -> None:
    make_namespace(state, host.netns)
    # The emulated hypervisor speaks IPv4 only: no IPv6 link-local chatter
    # (MLD, router solicitations) from its bridges and taps into tenant networks.
    for scope in ("all", "default"):
        ipcmd.sysctl(host.netns, f"net.ipv6.conf.{scope}.disable_ipv6", "1")
    ipcmd.sysctl(host.netns, "net.ipv4.igmp_link_local_mcast_reports", "0")
    veth(host.netns, HOST_UNDERLAY_IF, FABRIC_NS, host.fabric_port, underlay_mtu)
    ip("link", "set", host.fabric_port, "master", UNDERLAY_BR, ns=FABRIC_NS)
    ip("addr", "add", f"{host.underlay_ip}/{UNDERLAY_NET.prefixlen}", "dev", HOST_UNDERLAY_IF,
       ns=host.netns)
    ext_port = f"oc-fabx-h{host.index}"
    veth(host.netns, HOST_EXTERNAL_IF, FABRIC_NS, ext_port, 1500)
    ip("link", "set", ext_port, "master", EXTERNAL_BR, ns=FABRIC_NS)
    ipcmd.sysctl(host.netns, "net.ipv4.ip_forward", "1")


def host_device_macs(host_namespaces: list[str]) -> list[str]:
    """MACs of every device in these hypervisors (bridges, taps, VXLAN), and
    of the DHCP server and its networks' service namespaces (one MAC on every
    host, never on the overlay): frames from them are the host's own, not
    another tenant's."""
    return [link["address"] for ns in host_namespaces for link in ipcmd.links(ns)
            if link.get("address")] + [SERVER_MAC]


def lab_namespaces() -> list[str]:
    """Namespaces that carry the lab's mark (prefix ``oc-`` and a marked link)."""
    return [ns for ns in ipcmd.netns_list() if ns.startswith("oc-") and ipcmd.has_lab_mark(ns)]


def router_namespaces(hosts: list[str]) -> list[str]:
    """The router namespaces the lab hosts' agents made (named for one of
    ``hosts`` AND marked on their ``lo``): an agent stopped leaves them."""
    out = []
    for ns in ipcmd.netns_list():
        if any(plan_names.is_router_netns(ns, host) for host in hosts) and any(
                plan_names.router_of_mark(link.get("ifalias") or "") is not None
                for link in ipcmd.links(ns) if link.get("ifname") == "lo"):
            out.append(ns)
    return out


def destroy_namespaces(names: list[str]) -> list[str]:
    """Delete these namespaces (VMs first, fabric last); returns what was deleted."""
    order = sorted(set(names), key=lambda n: (n == FABRIC_NS, not n.startswith("oc-vm-"), n))
    deleted = []
    for name in order:
        if not name.startswith(("oc-", plan_names.ROUTER_NETNS_PREFIX)):
            continue  # never ours (router namespaces: only those router_namespaces found)
        if ipcmd.netns_exists(name):
            ipcmd.netns_delete(name)
            deleted.append(name)
    return deleted
