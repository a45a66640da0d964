"""The Overcast demo (``scripts/demo``): a data center on this machine, two
tenants with the same addresses, VMs talking across hosts, tenants isolated,
a security group keeping a VM out and a rule letting it in, a QoS bandwidth
limit holding and then changed live, the external
network an operator creates (flat, on each host's external NIC) reaching the
lab's internet, and a distributed router: two subnets routed across hosts,
SNAT to the internet and a floating IP reached from it.

Exits 0 when everything shown worked, non-zero with the reason otherwise.
The lab stays up at the end for exploring.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from overcast.lab import control, fabric, probe, state, vm
from overcast.lab.ipcmd import LabError
from overcast.lab.topology import (
    EXTERNAL_GW,
    EXTERNAL_NET,
    EXTERNAL_PHYSNET,
    PUBLIC_ZONE,
    default_topology,
)


class DemoFailed(Exception):
    pass


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def show(result: Any) -> None:
    for line in (result.stdout + result.stderr).rstrip().splitlines():
        print(f"   | {line}")


def bring_up() -> vm.Api:
    if state.load() is not None:
        say("Tearing down the previous lab")
        control.down()
    topo = default_topology()
    say(f"Building the lab: fabric switch, {len(topo.hosts)} hypervisors, API, one agent each")
    started = time.monotonic()
    control.up(topo)
    for h in topo.hosts:
        print(f"   {h.name}: namespace {h.netns}, underlay {h.underlay_ip}, agent alive")
    print(f"   Neutron API on {topo.api_url} ({time.monotonic() - started:.1f}s)")
    return vm.Api(topo.api_url)


def make_tenant(api: vm.Api, tenant: str, hosts: list[str]) -> list[dict[str, Any]]:
    net, subnet = api.create_network(f"{tenant}-net", "10.0.0.0/24", project_id=tenant)
    print(f"   network {net['name']} (project {tenant}): VXLAN VNI "
          f"{net.get('provider:segmentation_id')}, MTU {net.get('mtu')}, subnet {subnet['cidr']}")
    vms = []
    for i, host in enumerate(hosts, start=1):
        started = time.monotonic()
        v = vm.create(f"{tenant}-{i}", host, f"{tenant}-net", f"10.0.0.{10 + i}")
        print(f"   VM {v['name']:8} on {host}: {v['ips'][0]:10} mac {v['mac']}  "
              f"booted (ACTIVE, DHCP lease) after {time.monotonic() - started:.2f}s")
        vms.append(v)
    return vms


def show_dhcp_dns(api: vm.Api, vms: list[dict[str, Any]]) -> None:
    first, other = vms[0], vms[1]
    lease = vm.lease_dir(first)
    name, domain = (lease / "hostname").read_text().strip(), (lease / "domain").read_text().strip()
    routes = probe.in_ns(first["netns"], ["ip", "-4", "route"]).stdout.splitlines()
    print(f"   {first['name']} asked DHCP with busybox udhcpc; its host's agent answered: "
          f"{first['ips'][0]}, name {name}.{domain}, DNS {(lease / 'dns').read_text().strip()}")
    for line in routes:
        print(f"   | {line}")
    api.call("PUT", f"/v2.0/ports/{other['port_id']}", {"port": {"dns_name": "db"}})
    fqdn = f"db.{domain}"
    deadline = time.monotonic() + 5
    answer: list[str] = []
    while time.monotonic() < deadline and answer != other["ips"][:1]:
        answer = probe.in_ns(first["netns"], ["dig", "+short", "+time=1", "+tries=1",
                                              "@169.254.169.254", fqdn]).stdout.split()
        time.sleep(0.05)
    if answer != other["ips"][:1]:
        raise LabError(f"{first['name']}: {fqdn} resolved to {answer}, not {other['ips'][0]}")
    print(f"   {other['name']}'s port renamed 'db'; in {first['name']}: dig {fqdn} -> "
          f"{answer[0]} (answered on {first['host']}, UDP)")
    back = probe.in_ns(first["netns"], ["dig", "+short", "+tcp", "@169.254.169.254", "-x",
                                        other["ips"][0]]).stdout.strip()
    print(f"   dig +tcp -x {other['ips'][0]} -> {back}")


def must_ping(src: dict[str, Any], dst: dict[str, Any]) -> None:
    print(f"\n   {src['name']} ({src['host']}) -> {dst['name']} ({dst['host']}):"
          f" ping {dst['ips'][0]}")
    result = probe.ping(src["netns"], dst["ips"][0], 3)
    show(result)
    if result.returncode != 0:
        raise DemoFailed(f"{src['name']} cannot ping {dst['name']} ({dst['ips'][0]})")


def show_isolation(blue: list[dict[str, Any]], red: list[dict[str, Any]]) -> None:
    """red-1 shouts (ARP, broadcast ping) for an address both tenants use;
    the blue VMs with the same addresses, on the same hosts, hear nothing."""
    shouter, target = red[0], red[1]
    print(f"\n   capturing on every blue VM while {shouter['name']} ARPs for "
          f"{target['ips'][0]} and pings the broadcast address")
    captures = [probe.Capture(b["netns"], "eth0") for b in blue]
    for cap in captures:
        cap.__enter__()
    try:
        arp = probe.in_ns(shouter["netns"], ["arping", "-c", "2", "-w", "3", "-I", "eth0",
                                              target["ips"][0]])
        probe.in_ns(shouter["netns"], ["ping", "-b", "-c", "2", "-W", "1", "10.0.0.255"])
    finally:
        for cap in captures:
            cap.__exit__(None, None, None)
    show(arp)
    if target["mac"].lower() not in arp.stdout.lower():
        raise DemoFailed(f"{target['name']} ({target['mac']}) did not answer ARP in its own network")
    print(f"   -> answered by {target['name']}'s MAC {target['mac']}, not by the blue VM "
          f"with the same IP ({blue[1]['mac']})")
    hosts = sorted({f"oc-{v['host']}" for v in blue + red})
    blue_macs = [b["mac"] for b in blue] + fabric.host_device_macs(hosts)
    for b, cap in zip(blue, captures, strict=True):
        leaked = cap.foreign(blue_macs)
        print(f"   capture on {b['name']:8} ({b['ips'][0]}, {b['host']}): {len(cap.frames)} frames "
              f"in, {len(leaked)} of them from outside the blue network")
        if leaked:
            raise DemoFailed(f"tenant isolation broken: {b['name']} saw {leaked[:3]}")


def tcp_open(client: dict[str, Any], server: dict[str, Any], port: int, timeout: float) -> bool:
    try:
        probe.tcp_echo(server["netns"], server["ips"][0], client["netns"], port, timeout)
    except LabError:
        return False
    return True


def until(check: Callable[[], bool], deadline: float) -> float | None:
    """Seconds until ``check()`` held, or None if it did not within ``deadline``."""
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        if check():
            return time.monotonic() - started
    return None


def show_security_groups(api: vm.Api, client: dict[str, Any], server: dict[str, Any]) -> None:
    """``server`` leaves the default group for one without ingress rules:
    ``client`` is kept out; a rule tcp/PORT from ``client`` lets it in."""
    port = 8080
    if not tcp_open(client, server, port, 3.0):
        raise DemoFailed(f"{client['name']} cannot open tcp/{port} on {server['name']} "
                         "in the default group")
    print(f"   {client['name']} -> {server['name']} tcp/{port}: open (both in the default group)")
    group = api.call("POST", "/v2.0/security-groups",
                     {"security_group": {"name": "web"}})["security_group"]
    api.call("PUT", f"/v2.0/ports/{server['port_id']}", {"port": {"security_groups": [group["id"]]}})
    if until(lambda: not tcp_open(client, server, port, 0.3), 5.0) is None:
        raise DemoFailed(f"{server['name']} still reachable in a group without ingress rules")
    print(f"   {server['name']} moved to group 'web' (no ingress rules): tcp/{port} from "
          f"{client['name']} times out")
    api.call("POST", "/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": group["id"], "direction": "ingress", "ethertype": "IPv4",
        "protocol": "tcp", "port_range_min": port, "port_range_max": port,
        "remote_ip_prefix": f"{client['ips'][0]}/32"}})
    took = until(lambda: tcp_open(client, server, port, 0.3), 5.0)
    if took is None:
        raise DemoFailed(f"the rule tcp/{port} from {client['ips'][0]} did not open {server['name']}")
    print(f"   rule 'ingress tcp/{port} from {client['ips'][0]}/32' added: open after {took:.2f}s")
    if probe.ping(client["netns"], server["ips"][0], 2).returncode == 0:
        raise DemoFailed(f"ping reached {server['name']} without a rule for it")
    print(f"   ping {client['name']} -> {server['name']}: no answer (no rule lets ICMP in)")
    default = [g["id"] for g in api.call("GET", "/v2.0/security-groups")["security_groups"]
               if g["name"] == "default" and g["project_id"] == group["project_id"]]
    api.call("PUT", f"/v2.0/ports/{server['port_id']}", {"port": {"security_groups": default}})
    api.call("DELETE", f"/v2.0/security-groups/{group['id']}")
    print(f"   {server['name']} back in the default group")


def show_external(api: vm.Api) -> dict[str, Any]:
    """A flat provider network through the API as an operator makes it, and a VM
    on it that reaches the lab's internet from its own host (no overlay)."""
    net, subnet = api.create_network(
        "public", str(EXTERNAL_NET), EXTERNAL_GW, **{
            "provider:network_type": "flat", "provider:physical_network": EXTERNAL_PHYSNET,
            "router:external": True, "shared": True})
    print(f"   network {net['name']}: flat on physical network "
          f"{net['provider:physical_network']} (agents: --physical-network "
          f"{EXTERNAL_PHYSNET}=oc-ex0), MTU {net['mtu']}, subnet {subnet['cidr']}")
    started = time.monotonic()
    edge = vm.create("edge-1", "host3", "public", "203.0.113.20")
    print(f"   VM edge-1 on host3: 203.0.113.20, port ACTIVE after "
          f"{time.monotonic() - started:.2f}s")
    print(f"\n   edge-1 (host3) -> the internet: ping {EXTERNAL_GW}")
    result = probe.ping(edge["netns"], EXTERNAL_GW, 3)
    show(result)
    if result.returncode != 0:
        raise DemoFailed(f"edge-1 cannot reach the internet at {EXTERNAL_GW}")
    return net


def show_router(api: vm.Api, blue: list[dict[str, Any]], public: dict[str, Any]
                ) -> dict[str, Any]:
    """Blue's second subnet behind a distributed router (routed on the source
    host, straight to the destination host), the internet through the
    router's SNAT host, and a floating IP reached from the internet at the
    VM's own host."""
    net2, sub2 = api.create_network("blue-net2", "10.0.1.0/24", project_id="blue")
    print(f"   network {net2['name']}: subnet {sub2['cidr']} (gateway {sub2['gateway_ip']})")
    web = vm.create("blue-web", "host2", "blue-net2", "10.0.1.20")
    print(f"   VM blue-web on host2: {web['ips'][0]}")
    router = api.call("POST", "/v2.0/routers", {"router": {
        "name": "blue-router", "project_id": "blue",
        "external_gateway_info": {"network_id": public["id"]}}})["router"]
    subnets = [s for s in api.call("GET", "/v2.0/subnets")["subnets"]
               if s["network_id"] in (blue[0]["network_id"], net2["id"])]
    for s in subnets:
        api.call("PUT", f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": s["id"]})
    gw = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    print(f"   router blue-router: interfaces on {', '.join(s['cidr'] for s in subnets)}, "
          f"gateway {gw} on public")
    _wait_ping(blue[0]["netns"], web["ips"][0],
               f"{blue[0]['name']} cannot reach {web['name']} through the router")
    must_ping(blue[0], web)
    snat = {a["host"]: a["configurations"].get("snat_routers", [])
            for a in api.call("GET", "/v2.0/agents")["agents"]}
    doer = [h for h, routers in snat.items() if router["id"] in routers]
    print(f"\n   {blue[0]['name']} ({blue[0]['host']}) -> the internet {EXTERNAL_GW}, "
          f"SNAT to {gw} on {', '.join(doer) or 'no host'}")
    result = probe.ping(blue[0]["netns"], EXTERNAL_GW, 3)
    show(result)
    if result.returncode != 0:
        raise DemoFailed(f"{blue[0]['name']} cannot reach the internet through SNAT")
    fip = api.call("POST", "/v2.0/floatingips", {"floatingip": {
        "floating_network_id": public["id"], "port_id": blue[2]["port_id"]}})["floatingip"]
    address = fip["floating_ip_address"]
    group = api.call("GET", f"/v2.0/ports/{blue[2]['port_id']}")["port"]["security_groups"][0]
    api.call("POST", "/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": group, "direction": "ingress", "protocol": "icmp",
        "remote_ip_prefix": "0.0.0.0/0"}})
    print(f"\n   floating IP {address} -> {blue[2]['name']} ({blue[2]['host']}), its group "
          f"lets ICMP in from anywhere; the internet pings it")
    _wait_ping(fabric.EXT_NS, address, f"the internet cannot reach floating IP {address}")
    result = probe.ping(fabric.EXT_NS, address, 3, "-W", "2")
    show(result)
    if result.returncode != 0:
        raise DemoFailed(f"the internet cannot reach floating IP {address}")
    return web


POOL = ("198.51.100.10", "198.51.100.11")


def public_name(v: dict[str, Any]) -> str:
    return f"{v['name']}.{PUBLIC_ZONE}"


def resolved(v: dict[str, Any]) -> list[str]:
    """``v``'s public name as the internet resolves it (the public zone's server)."""
    return probe.in_ns(fabric.EXT_NS, ["dig", "+short", "+time=1", "+tries=1", f"@{EXTERNAL_GW}",
                                       public_name(v)]).stdout.split()


def _until(check: Callable[[], Any], failure: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (got := check()):
        if time.monotonic() > deadline:
            raise DemoFailed(f"{failure} after {timeout:g}s")
        time.sleep(0.05)
    return got


def _problem(api: vm.Api, v: dict[str, Any]) -> str:
    port = api.call("GET", f"/v2.0/ports/{v['port_id']}")["port"]
    return str((port.get("overcast:public_binding") or {}).get("problem") or "")


def show_public_binding(api: vm.Api, public: dict[str, Any], vms: list[dict[str, Any]]) -> None:
    """Three VMs with public names on a pool of two public addresses, taking turns."""
    api.call("POST", "/v2.0/subnets", {"subnet": {
        "network_id": public["id"], "cidr": "198.51.100.0/24", "ip_version": 4, "gateway_ip": None,
        "allocation_pools": [{"start": POOL[0], "end": POOL[1]}], "tags": ["public-pool"],
        "service_types": ["network:floatingip"]}})
    print(f"   the operator tags a public subnet 'public-pool': {POOL[0]}-{POOL[1]}, two addresses "
          "for floating IPs only")
    first, second, third = vms
    for v in vms:  # shut down, named, booted again (a running VM named is bound at once)
        vm.stop(v["name"])
        api.call("PUT", f"/v2.0/ports/{v['port_id']}", {"port": {
            "overcast:public_hostname": public_name(v)}})
    print(f"   the VMs shut down; their ports are named {', '.join(public_name(v) for v in vms)}")
    for v in (first, second):
        vm.start(v["name"])
        address = _until(partial(resolved, v), f"{public_name(v)} does not resolve")[0]
        print(f"   {v['name']} boots: from the internet, dig {public_name(v)} -> {address}")
    vm.start(third["name"])
    why = _until(lambda: _problem(api, third), f"{third['name']} was not told the pool is empty")
    print(f"   {third['name']} booted on its private address only; its port says: {why}")
    was = resolved(first)[0]
    vm.stop(first["name"])
    _until(lambda: resolved(first) == [], f"{public_name(first)} still resolves")
    got = _until(lambda: resolved(third), f"{third['name']} got no address")[0]
    print(f"   {first['name']} stops: its name is withdrawn, and {third['name']} gets its "
          f"address: {public_name(third)} -> {got}")
    vm.start(first["name"])
    _until(lambda: _problem(api, first), f"{first['name']} was not told the pool is empty")
    vm.stop(second["name"])
    now = _until(lambda: resolved(first), f"{public_name(first)} does not resolve again")[0]
    print(f"   {first['name']} boots again and waits; {second['name']} stops: "
          f"{public_name(first)} -> {now} (it was {was}): the same name, another address")
    vm.start(second["name"])


def _wait_ping(ns: str, address: str, failure: str, timeout: float = 10.0) -> None:
    """Until a first ping passes (the agents' pass after the router changed)."""
    deadline = time.monotonic() + timeout
    while probe.ping(ns, address, 1, "-W", "1").returncode != 0:
        if time.monotonic() > deadline:
            raise DemoFailed(f"{failure} after {timeout:g}s")


def hints() -> None:
    say("The lab is still up. Explore it:")
    print("   overcast lab status")
    print("   overcast lab vm list")
    print("   overcast lab vm exec blue-1 -- ping -c 2 10.0.0.13")
    print("   overcast lab vm exec red-1 -- ip neigh")
    print("   overcast network list        (or: openstack --os-auth-type none "
          "--os-endpoint http://127.0.0.1:9696 network list)")
    print("   ip -n oc-host1 -d link show  (the bridges and VXLAN devices an agent made)")
    print("Tear it down with:  overcast lab down")


def _qos_enforced(api: vm.Api, v: dict[str, Any], kbps: int | None) -> dict[str, Any]:
    """The port's ``overcast:qos`` once its host enforces an egress limit of ``kbps`` (None: none)."""
    def check() -> tuple[dict[str, Any]] | None:  # (a tuple: an empty entry is an answer)
        port = api.call("GET", f"/v2.0/ports/{v['port_id']}")["port"]
        entry = (port.get("overcast:qos") or [{}])[0]
        have = (entry.get("egress") or {}).get("max_kbps")
        return (entry,) if port["status"] == "ACTIVE" and have == kbps else None

    found: tuple[dict[str, Any]] = _until(check, f"{v['name']}: egress limit {kbps} not enforced")
    return found[0]


def _measured(src: dict[str, Any], dst: dict[str, Any], limit: int) -> float:
    kbps = probe.tcp_rate(dst["netns"], dst["ips"][0], src["netns"], 3, int(src["mtu"]))
    share = kbps / limit
    print(f"   iperf3 {src['name']} -> {dst['name']}: {kbps / 1000:.1f} Mbit/s on the wire "
          f"({share:.1%} of the limit)")
    if abs(share - 1) > 0.1:
        raise DemoFailed(f"{src['name']}: measured {kbps:.0f} kbit/s against a limit of {limit}")
    return kbps


def show_qos(api: vm.Api, src: dict[str, Any], dst: dict[str, Any]) -> None:
    policy = api.call("POST", "/v2.0/qos/policies", {"policy": {"name": "bronze"}})["policy"]
    rule = api.call("POST", f"/v2.0/qos/policies/{policy['id']}/bandwidth_limit_rules",
                    {"bandwidth_limit_rule": {"max_kbps": 50_000, "direction": "egress"}})
    rule_path = (f"/v2.0/qos/policies/{policy['id']}/bandwidth_limit_rules/"
                 f"{rule['bandwidth_limit_rule']['id']}")
    api.call("PUT", f"/v2.0/ports/{src['port_id']}", {"port": {"qos_policy_id": policy["id"]}})
    entry = _qos_enforced(api, src, 50_000)
    print(f"   policy 'bronze' (egress 50 Mbit/s) on {src['name']}'s port: {entry['host']} shapes "
          f"it on {entry['egress']['device']} (the tap's ingress redirected to an ifb, htb)")
    _measured(src, dst, 50_000)
    with probe.Capture(dst["netns"], "eth0", f"icmp and src {src['ips'][0]}") as cap:
        pinger = subprocess.Popen(["ip", "netns", "exec", src["netns"], "ping", "-n", "-q",
                                   "-i", "0.01", "-c", "150", dst["ips"][0]],
                                  stdout=subprocess.PIPE, text=True)
        started = time.monotonic()
        api.call("PUT", rule_path, {"bandwidth_limit_rule": {"max_kbps": 20_000}})
        _qos_enforced(api, src, 20_000)
        took = time.monotonic() - started
        out = pinger.communicate(timeout=30)[0]
    lost = [ln for ln in out.splitlines() if "packet loss" in ln]
    print(f"   rate changed live to 20 Mbit/s: enforced {took:.2f}s after the API call, "
          f"pinging all along: {lost[0].strip() if lost else out.strip()}")
    if pinger.returncode != 0 or " 0% packet loss" not in out or len(cap.frames) < 150:
        raise DemoFailed(f"pings lost while the rate changed: {out.strip()}")
    _measured(src, dst, 20_000)
    api.call("PUT", f"/v2.0/ports/{src['port_id']}", {"port": {"qos_policy_id": None}})
    _qos_enforced(api, src, None)
    api.call("DELETE", f"/v2.0/qos/policies/{policy['id']}")
    print(f"   policy removed: {src['name']} is unshaped again")


def run() -> None:
    api = bring_up()
    say("Tenant 'blue' creates a network and three VMs, one per hypervisor")
    blue = make_tenant(api, "blue", ["host1", "host2", "host3"])
    say("Each VM got its address from its own host's DHCP, and resolves the others' names")
    show_dhcp_dns(api, blue)
    say("Blue VMs talk across hosts over VXLAN (the agents programmed bridges and FDB)")
    must_ping(blue[0], blue[1])
    must_ping(blue[0], blue[2])
    say("Tenant 'red' makes a network with the SAME CIDR and the same IPs, on the same hosts")
    red = make_tenant(api, "red", ["host1", "host2"])
    must_ping(red[0], red[1])
    say("Isolation: red's broadcasts never reach blue")
    show_isolation(blue, red)
    say("Security groups: a group without ingress rules keeps a VM out, a rule lets it in")
    show_security_groups(api, blue[0], blue[2])
    say("QoS: a bandwidth limit holds on the wire, and changes live without a lost ping")
    show_qos(api, blue[0], blue[1])
    say("The operator creates the external network: flat, on the physical network each host "
        "maps to its external NIC")
    public = show_external(api)
    say("Blue adds a second subnet and a router: routed across hosts, out to the internet "
        "through SNAT, and a floating IP the internet reaches")
    web = show_router(api, blue, public)
    say("Public names: VMs take turns on a small public pool; a name follows its VM's "
        "address")
    show_public_binding(api, public, [blue[0], blue[1], web])
    say("Demo complete: all checks passed")


def main(argv: list[str] | None = None) -> int:
    print("Overcast demo: network virtualization on an emulated data center")
    try:
        run()
    except (DemoFailed, LabError) as exc:
        print(f"\ndemo FAILED: {exc}", file=sys.stderr)
        print(f"logs: {state.state_dir()}/*.log; tear down with: overcast lab down",
              file=sys.stderr)
        return 1
    hints()
    return 0


if __name__ == "__main__":
    sys.exit(main())
