"""``overcast lab ...``: the emulated data center's command line."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from overcast.lab import control, processes, state, vm
from overcast.lab.ipcmd import LabError
from overcast.lab.topology import load_topology


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="overcast lab",
        description="An emulated data center in network namespaces (oc-*): a fabric, "
        "hypervisor hosts each running an agent, the API, and VMs. Needs root.")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    upp = _command(sub, "up", "build the lab, start the API and one agent per host")
    upp.add_argument("topology", nargs="?", help="topology YAML (default: 3 hosts)")
    _command(sub, "down", "stop the lab's processes and delete what it made (nothing else)")
    _command(sub, "status", "show hosts, processes and VMs")
    hostp = _command(sub, "host", "manage the lab's hypervisor hosts")
    hosts = hostp.add_subparsers(dest="hcmd", required=True, metavar="COMMAND")
    _command(hosts, "add", "add a hypervisor host (with its agent) to the running lab") \
        .add_argument("name", nargs="?", help="host name (default: the next hostN)")
    vmp = _command(sub, "vm", "manage lab VMs (namespaces with a port on a tenant network)")
    vms = vmp.add_subparsers(dest="vcmd", required=True, metavar="COMMAND")
    c = _command(vms, "create", "create a VM (port via the API) and wait until ACTIVE")
    c.add_argument("name", help="VM name")
    c.add_argument("--host", required=True, help="lab host to run it on")
    c.add_argument("--network", required=True, help="network name or id")
    c.add_argument("--ip", help="fixed IP (default: allocated by the API)")
    c.add_argument("--static", action="store_true",
                   help="write the port's address into the VM instead of asking DHCP")
    c.add_argument("--timeout", type=float, default=vm.ACTIVE_TIMEOUT,
                   help="seconds to wait for ACTIVE (default %(default)g)")
    e = _command(vms, "exec", "run a command inside a VM: vm exec NAME -- CMD...")
    e.add_argument("name", help="VM name")
    e.add_argument("argv", nargs=argparse.REMAINDER, help="the command and its arguments")
    _command(vms, "delete", "delete a VM and its port").add_argument("name", help="VM name")
    _command(vms, "stop", "shut a VM down (it releases its DHCP lease, its NIC goes down)") \
        .add_argument("name", help="VM name")
    _command(vms, "start", "boot a stopped VM again (NIC up, DHCP)").add_argument(
        "name", help="VM name")
    _command(vms, "list", "list VMs")
    return p


def _command(sub: Any, name: str, help_: str) -> argparse.ArgumentParser:
    """A subcommand whose line in its parent's help is also its own description."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_, description=help_)
    return parser


def cmd_status() -> int:
    st = state.load()
    if st is None:
        print("lab: down")
        return 0
    topo = control.current_topology()
    print(f"lab: up (state {state.state_dir()}, API {topo.api_url}, "
          f"underlay MTU {topo.underlay_mtu})")
    try:
        alive = control.alive_agents(topo)
    except Exception as exc:  # noqa: BLE001 - status shows what it can
        print(f"  API not answering: {exc}")
        alive = {}
    for h in topo.hosts:
        print(f"  host {h.name:10} {h.netns:12} underlay {h.underlay_ip:15} "
              f"agent {'alive' if alive.get(h.name) else 'NOT alive'}")
    for name, rec in sorted(st.processes.items()):
        run = "running" if processes.is_running(rec) else "EXITED"
        print(f"  process {name:16} pid {rec['pid']:<8} {run}")
    for v in vm.list_vms():
        print(f"  vm {v['name']:12} host {v['host']:8} ips {','.join(v.get('ips', []))} "
              f"port {v['port_id']}")
    return 0


def cmd_vm(args: argparse.Namespace) -> int:
    if args.vcmd == "create":
        v = vm.create(args.name, args.host, args.network, args.ip, args.timeout,
                      static=args.static)
        how = "by DHCP" if v.get("dhcp") else "static"
        print(f"vm {v['name']}: ACTIVE on {v['host']}, ip {','.join(v['ips'])} ({how}), "
              f"mac {v['mac']}, port {v['port_id']}")
    elif args.vcmd == "exec":
        argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        vm.exec_in(args.name, argv)
    elif args.vcmd == "delete":
        vm.delete(args.name)
        print(f"vm {args.name}: deleted")
    elif args.vcmd == "stop":
        vm.stop(args.name)
        print(f"vm {args.name}: stopped (lease released, NIC down)")
    elif args.vcmd == "start":
        v = vm.start(args.name)
        print(f"vm {args.name}: started, ip {','.join(v['ips'])}")
    else:
        for v in vm.list_vms():
            print(f"{v['name']:16} {v['host']:10} {','.join(v.get('ips', [])):16} "
                  f"{v['mac']:18} {v['port_id']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.cmd == "up":
            topo = load_topology(args.topology)
            control.up(topo)
            print(f"lab up: {len(topo.hosts)} hosts, API {topo.api_url}, state {state.state_dir()}")
        elif args.cmd == "down":
            control.down()
        elif args.cmd == "status":
            return cmd_status()
        elif args.cmd == "host":
            h = control.add_host(args.name)
            print(f"host {h.name}: up, underlay {h.underlay_ip}, agent alive")
        else:
            return cmd_vm(args)
    except LabError as exc:
        print(f"overcast lab: error: {exc}", file=sys.stderr)
        return 1
    return 0
