"""Lab VMs: a namespace ``oc-vm-NAME`` whose ``eth0`` is a veth to its host.

The port is created through the Neutron API, bound to the host; the host end
of the veth is named like a Nova tap (``tap`` + 11 of the port id), moved into
the host's namespace and left unplugged: the host's agent plugs it, and the
VM is ready when the API reports the port ACTIVE.  Then the VM boots as a
cloud's do: a real DHCP client (busybox ``udhcpc``) asks its host's agent for
the address, routes and MTU, unless its subnet has DHCP disabled or the VM
is made ``static`` (then the lab writes the port's address itself).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from overcast.lab import fabric, ipcmd, state
from overcast.lab.control import current_topology, log_path
from overcast.lab.ipcmd import LAB_ALIAS, LabError, ip
from overcast.plan.names import tap_name

VM_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
ACTIVE_TIMEOUT = 30.0
DHCP_TIMEOUT = 10.0  # udhcpc's whole try: 5 DISCOVERs a second apart, then the REQUEST
# udhcpc's script: what a lab VM does with its lease ($1: deconfig, bound, renew, ...)
UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr replace "$ip/$mask" dev "$interface"
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    if [ -n "$staticroutes" ]; then  # option 121 (it holds the default route too)
      set -- $staticroutes
      while [ $# -ge 2 ]; do
        if [ "$2" = 0.0.0.0 ]; then ip route replace "$1" dev "$interface"
        else ip route replace "$1" via "$2" dev "$interface"; fi
        shift 2
      done
    elif [ -n "$router" ]; then
      set -- $router; ip route replace default via "$1" dev "$interface"
    fi
    echo "$hostname" > "$LEASE_DIR/hostname"
    echo "$domain" > "$LEASE_DIR/domain"
    echo "$dns" > "$LEASE_DIR/dns"
    touch "$LEASE_DIR/bound" ;;
esac
exit 0
"""


def vm_netns(name: str) -> str:
    return f"oc-vm-{name}"


class Api:
    """The few Neutron calls the lab needs, with errors that say what failed."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=10.0)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            resp = self.client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise LabError(f"API {method} {path}: {exc}") from exc
        if resp.status_code >= 400:
            raise LabError(f"API {method} {path}: HTTP {resp.status_code}: {resp.text[:300]}")
        return resp.json() if resp.content else None

    def find_network(self, ref: str) -> dict[str, Any]:
        nets = self.call("GET", "/v2.0/networks")["networks"]
        found = [n for n in nets if n["id"] == ref] or [n for n in nets if n.get("name") == ref]
        if len(found) != 1:
            raise LabError(f"network {ref!r}: {'not found' if not found else 'ambiguous name'}")
        return found[0]  # type: ignore[no-any-return]

    def create_network(self, name: str, cidr: str, gateway: str | None = None,
                       **network: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """A tenant network with one IPv4 subnet; returns (network, subnet)."""
        net = self.call("POST", "/v2.0/networks", {"network": {"name": name, **network}})["network"]
        body: dict[str, Any] = {"network_id": net["id"], "cidr": cidr, "ip_version": 4,
                                "name": f"{name}-subnet"}
        if gateway is not None:
            body["gateway_ip"] = gateway
        subnet = self.call("POST", "/v2.0/subnets", {"subnet": body})["subnet"]
        return net, subnet


def create(name: str, host_name: str, network: str, address: str | None = None,
           timeout: float = ACTIVE_TIMEOUT, *,
           security_groups: list[str] | None = None, static: bool = False,
           **port: Any) -> dict[str, Any]:
    """Create VM ``name`` on ``host_name`` attached to ``network``; wait until
    ACTIVE, then until it has its address (by DHCP unless ``static`` or its
    subnet has DHCP disabled).

    ``security_groups`` (ids) are the port's from its creation; without them
    the API gives it the project's default group.  ``port``: more attributes
    of the port (e.g. ``project_id``: the lab's API caller is an admin)."""
    if not VM_NAME.match(name):
        raise LabError(f"VM name {name!r}: use 1-40 of a-z, 0-9, '-'")
    topo = current_topology()
    host = topo.host(host_name)
    st = state.load()
    if st is not None and name in st.vms:
        raise LabError(f"VM {name} already exists")
    api = Api(topo.api_url)
    net = api.find_network(network)
    body = _port_body(name, host.name, net, address)
    if security_groups is not None:
        body["security_groups"] = security_groups
    body.update(port)  # more of the port's attributes (the lab calls the API as an admin)
    port = api.call("POST", "/v2.0/ports", {"port": body})["port"]
    vm = {"name": name, "host": host.name, "network_id": net["id"], "port_id": port["id"],
          "netns": vm_netns(name), "mac": port["mac_address"], "mtu": net.get("mtu", 1500)}
    with state.locked() as st_:
        st_.vms[name] = vm
        fabric.make_namespace(st_, vm["netns"])
    dhcp = _wire(vm, host.netns, api, port, static)
    wait_active(api, vm, timeout)
    if dhcp:
        boot_by_dhcp(vm)
    return vm


def _port_body(name: str, host: str, net: dict[str, Any], address: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"network_id": net["id"], "binding:host_id": host,
                            "name": f"vm-{name}", "device_id": f"lab-vm-{name}",
                            "device_owner": "compute:lab"}
    if address:
        body["fixed_ips"] = [{"ip_address": address}]
    return body


def _wire(vm: dict[str, Any], host_ns: str, api: Api, port: dict[str, Any],
          static: bool) -> bool:
    """The VM's NIC; its address too when it is not to come by DHCP.
    True: the VM is to ask DHCP (its first IPv4 subnet has DHCP enabled)."""
    ns, tap, mtu = vm["netns"], tap_name(vm["port_id"]), str(vm["mtu"])
    ipcmd.sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1")
    ipcmd.sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1")
    ip("link", "add", "eth0", "mtu", mtu, "address", vm["mac"], "type", "veth",
       "peer", "name", tap, "netns", host_ns, "mtu", mtu, ns=ns)
    ip("link", "set", "eth0", "alias", LAB_ALIAS, "up", ns=ns)
    ip("link", "set", tap, "up", ns=host_ns)
    vm["ips"], dhcp = [], False
    for fixed in port.get("fixed_ips", []):
        subnet = api.call("GET", f"/v2.0/subnets/{fixed['subnet_id']}")["subnet"]
        if subnet.get("ip_version", 4) != 4:
            continue
        vm["ips"].append(fixed["ip_address"])
        if len(vm["ips"]) == 1 and subnet.get("enable_dhcp", True) and not static:
            dhcp = True
            continue
        prefix = ipaddress.ip_network(subnet["cidr"]).prefixlen
        ip("addr", "add", f"{fixed['ip_address']}/{prefix}", "dev", "eth0", ns=ns)
        if subnet.get("gateway_ip") and len(vm["ips"]) == 1:
            ip("route", "add", "default", "via", subnet["gateway_ip"], ns=ns)
    vm["dhcp"] = dhcp
    with state.locked() as st:
        st.vms[vm["name"]] = vm
    return dhcp


def lease_dir(vm: dict[str, Any]) -> Path:
    return state.state_dir() / "vms" / str(vm["name"])


def boot_by_dhcp(vm: dict[str, Any], timeout: float = DHCP_TIMEOUT) -> None:
    """The VM asks for its lease with busybox udhcpc (once: a lease lasts a
    day); LabError when no lease came or it is not the port's address."""
    where = lease_dir(vm)
    where.mkdir(parents=True, exist_ok=True)
    script = where / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    argv = ["env", f"LEASE_DIR={where}", "busybox", "udhcpc", "-f", "-q", "-n", "-i", "eth0",
            "-s", str(script), "-t", "5", "-T", "1", "-O", "mtu", "-O", "staticroutes",
            "-O", "hostname", "-O", "domain", "-x", f"hostname:{vm['name']}"]
    proc = ipcmd.run(argv, ns=vm["netns"], check=False, timeout=timeout + 5)
    got = [a["local"] for link in ipcmd.ip_json("-4", "addr", "show", "dev", "eth0", ns=vm["netns"])
           for a in link.get("addr_info", [])]
    if proc.returncode != 0 or vm["ips"][0] not in got:
        raise LabError(
            f"VM {vm['name']}: no DHCP lease for {vm['ips'][0]} on host {vm['host']} "
            f"(udhcpc exit {proc.returncode}, eth0 has {got or 'no address'}): "
            f"{(proc.stderr or proc.stdout).strip()[-300:]}; the agent's log is "
            f"{log_path('agent-' + vm['host'])}")


def wait_active(api: Api, vm: dict[str, Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    status = "?"
    while time.monotonic() < deadline:
        status = api.call("GET", f"/v2.0/ports/{vm['port_id']}")["port"].get("status", "?")
        if status == "ACTIVE":
            return
        time.sleep(0.05)
    raise LabError(
        f"VM {vm['name']}: port {vm['port_id']} on host {vm['host']} is {status}, not ACTIVE, "
        f"after {timeout:g}s; the agent's log is {log_path('agent-' + vm['host'])}")


def stop(name: str) -> dict[str, Any]:
    """The VM shuts down as a cloud's does: its DHCP client releases the
    lease on its way out (busybox udhcpc -R, stopped by SIGTERM once bound:
    with -q it would exit before its address allowed the unicast RELEASE),
    which ends its dynamic public binding, and its NIC goes down."""
    vm = _vm(name)
    if vm.get("dhcp"):
        _release(vm)
    ip("addr", "flush", "dev", "eth0", ns=vm["netns"])
    ip("link", "set", "eth0", "down", ns=vm["netns"])
    return vm


def _release(vm: dict[str, Any]) -> None:
    where = lease_dir(vm)
    marker = where / "bound"
    marker.unlink(missing_ok=True)
    client = subprocess.Popen(
        ["ip", "netns", "exec", vm["netns"], "env", f"LEASE_DIR={where}", "busybox", "udhcpc",
         "-f", "-R", "-i", "eth0", "-s", str(where / "udhcpc.sh"), "-t", "3", "-T", "1",
         "-O", "staticroutes", "-O", "mtu"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + DHCP_TIMEOUT
        while not marker.exists() and client.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        client.terminate()  # -R: the RELEASE goes out as it exits
        try:
            client.wait(timeout=5)
        except subprocess.TimeoutExpired:
            client.kill()
            client.wait()
    if not marker.exists():
        raise LabError(f"VM {vm['name']}: no lease to release within {DHCP_TIMEOUT:g}s")


def start(name: str) -> dict[str, Any]:
    """The VM boots again: its NIC up, its lease asked for anew."""
    vm = _vm(name)
    ip("link", "set", "eth0", "up", ns=vm["netns"])
    if vm.get("dhcp"):
        boot_by_dhcp(vm)
    return vm


def _vm(name: str) -> dict[str, Any]:
    st = state.load()
    if st is None or name not in st.vms:
        raise LabError(f"no VM named {name}")
    return dict(st.vms[name])


def delete(name: str) -> None:
    st = state.load()
    vm = st.vms.get(name) if st else None
    if vm is None:
        raise LabError(f"no VM named {name}")
    topo = current_topology()
    try:
        Api(topo.api_url).call("DELETE", f"/v2.0/ports/{vm['port_id']}")
    except LabError as exc:
        if "HTTP 404" not in str(exc):
            raise
    fabric.destroy_namespaces([vm["netns"]])
    shutil.rmtree(lease_dir(vm), ignore_errors=True)
    with state.locked() as st_:
        st_.vms.pop(name, None)
        if vm["netns"] in st_.namespaces:
            st_.namespaces.remove(vm["netns"])


def exec_argv(name: str, argv: list[str]) -> list[str]:
    st = state.load()
    if st is None or name not in st.vms:
        raise LabError(f"no VM named {name}")
    if not argv:
        raise LabError("vm exec: give a command after '--'")
    return ["ip", "netns", "exec", st.vms[name]["netns"], *argv]


def exec_in(name: str, argv: list[str]) -> None:
    """Replace this process with ``argv`` run inside the VM."""
    full = exec_argv(name, argv)
    os.execvp(full[0], full)


def list_vms() -> list[dict[str, Any]]:
    st = state.load()
    return list(st.vms.values()) if st else []
