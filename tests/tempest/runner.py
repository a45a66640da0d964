"""Run the OpenStack community's network API tests (tempest's
``tempest.api.network`` and ``neutron_tempest_plugin.api``) against Overcast:
a real Keystone (the launcher steps of tests/keystone/conftest.py), ``overcast
server --auth keystone`` on a free 127.0.0.1 port, an external network, a
tempest workspace and its tempest.conf, then ``tempest run``; prints the
pass/fail/skip counts per suite.  Started by scripts/tempest (docs/tempest.md),
which makes ``.venv-tempest`` first.  Every process started here is stopped by
its PID at the end, also on failure, SIGINT or SIGTERM (unless --keep).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from overcast.lab import fabric, ipcmd, processes

# tests/ on the path: its packages by the names pytest and mypy give them (keystone, ...)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from keystone import conftest as ks  # noqa: E402

from .options import parse_args  # noqa: E402

ROOT = ks.ROOT
TEMPEST_VENV = Path(os.environ.get("OVERCAST_TEMPEST_VENV") or ROOT / ".venv-tempest")
SUITES = ("tempest.api.network", "neutron_tempest_plugin.api")
PUBLIC_CIDR = "203.0.113.0/24"
PROJECT_CIDR = "10.100.0.0/16"
KEYSTONE_TIMEOUT = 120  # s, each call of Overcast's to Keystone: a loaded machine is slow
# the agent's hypervisor (as root): a namespace carrying the lab's mark, so that `overcast lab
# down` removes it too if a run is killed before its own cleanup; an underlay address of its own
AGENT_HOST = "tempest-h1"
AGENT_NS = "oc-tempest-h1"
AGENT_UNDERLAY = "198.18.250.1/24"
AGENT_READY = 60.0  # s: the agent registered and alive
# the agent's PID while a run has it (it runs in a session of its own: a runner killed
# with SIGKILL leaves it running, and two agents for one host would undo each other's work)
AGENT_PIDFILE = Path("/run/oc-tempest-h1.pid")
CONSOLE = re.compile(r"^\{\d+\} (.+?) (?:\[[\d.]+s\] )?\.\.\. (ok|FAILED|SKIPPED)")
CONSOLE_OUTCOMES = {"ok": "pass", "FAILED": "fail", "SKIPPED": "skip"}
OUTCOMES = {"success": "pass", "failure": "fail", "error": "fail", "skip": "skip",
            "xfail": "pass", "expectedfailure": "pass", "uxsuccess": "fail",
            "unexpectedsuccess": "fail"}  # subunit2csv's status column


@dataclass
class Stack:
    keystone: ks.Keystone
    overcast_url: str
    admin_token: str


class Processes:
    """What this run started, stopped by PID (a process group: tempest's workers too)."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.cleanups: list[Any] = []  # called after the processes are stopped, last first

    def start(self, name: str, cmd: list[str], log: Path, **kw: Any) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, **kw)
        self.procs.append((name, proc))
        return proc

    def stop_all(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    _signal_group(proc.pid, signal.SIGKILL)
                    proc.wait()
        while self.cleanups:
            self.cleanups.pop()()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # the group this run made for that PID (start_new_session)
    except ProcessLookupError:
        pass


def start_keystone(procs: Processes, where: Path, overcast_port: int) -> ks.Keystone:
    """The steps of tests/keystone/conftest.py's ``keystone`` fixture, with its helpers."""
    began = time.monotonic()
    conf = where / "keystone.conf"
    conf.write_text(ks.CONF.format(dir=where))
    port = ks.free_port()
    url = f"http://127.0.0.1:{port}/v3"
    ids = ["--keystone-user", str(os.getuid()), "--keystone-group", str(os.getgid())]
    ks._finish(ks._manage(conf, "db_sync"), ks._manage(conf, "fernet_setup", *ids),
               ks._manage(conf, "credential_setup", *ids))
    bootstrap = ks._manage(conf, "bootstrap", "--bootstrap-password", ks.PASSWORD.format("admin"),
                           "--bootstrap-region-id", "RegionOne", "--bootstrap-admin-url", url,
                           "--bootstrap-public-url", url, "--bootstrap-internal-url", url)
    env = {**os.environ, "OS_KEYSTONE_CONFIG_FILES": str(conf)}
    server = procs.start("keystone", [str(ks.VENV / "bin" / "python"), str(ks.WSGI), str(port)],
                         where / "wsgi.log", env=env)
    ks._finish(bootstrap)
    ks._wait_for(url, server, where / "wsgi.log")
    keystone = ks.Keystone(url, f"http://127.0.0.1:{overcast_port}", where, server.pid, 0.0)
    ks._provision(keystone, ks._admin_token(keystone._client, url, server))
    keystone.started_in = time.monotonic() - began
    return keystone


# the quotas neutron-tempest-plugin's gate jobs give Neutron: its defaults (10 routers, 10 security
# groups) are fewer than one test class makes and keeps until its class ends
TEMPEST_QUOTAS = ("router=100", "floatingip=500", "security_group=150", "security_group_rule=1000")


def start_overcast(procs: Processes, keystone: ks.Keystone, where: Path, store: str) -> None:
    port = int(keystone.overcast_url.rsplit(":", 1)[1])
    settings = where / "overcast-keystone.yaml"
    settings.write_text(f"keystone:\n  timeout: {KEYSTONE_TIMEOUT}\n")
    cmd = [str(Path(sys.executable).with_name("overcast")), "server", "--bind", f"127.0.0.1:{port}",
           "--store", store, "--auth", "keystone", "--keystone-url", keystone.url,
           "--keystone-user", "overcast", "--keystone-project", "service",
           "--keystone-config", str(settings),
           *(a for q in TEMPEST_QUOTAS for a in ("--default-quota", q)),
           "--log-level", "info"]
    env = {**os.environ, "OVERCAST_KEYSTONE_PASSWORD": keystone.password("overcast")}
    server = procs.start("overcast", cmd, where / "overcast.log", env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"overcast server exited ({server.returncode}); see "
                             f"{where / 'overcast.log'}")
        try:
            httpx.get(keystone.overcast_url + "/", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"overcast server did not answer {keystone.overcast_url} within 60 s")


def make_agent_host(procs: Processes) -> None:
    """The agent's hypervisor: namespace AGENT_NS with a veth pair inside it
    for its underlay address (removed at the end with the router namespaces
    its agent made)."""
    earlier = _earlier_agent()
    if earlier is not None:
        raise SystemExit(f"the agent of an earlier run is still running (pid {earlier}): stop it "
                         f"(kill {earlier}), then run 'overcast lab down' for its namespaces")
    if ipcmd.netns_exists(AGENT_NS):
        raise SystemExit(f"namespace {AGENT_NS} exists (a run that was killed?): remove it with "
                         "'overcast lab down' (it carries the lab's mark)")
    procs.cleanups.append(lambda: remove_agent_host(owned=True))  # made by this run, marked or not
    ipcmd.netns_add(AGENT_NS)
    for scope in ("all", "default"):  # as a lab host: no IPv6 chatter of its own
        ipcmd.sysctl(AGENT_NS, f"net.ipv6.conf.{scope}.disable_ipv6", "1")
    fabric.veth(AGENT_NS, "oc-tp-u0", AGENT_NS, "oc-tp-u1", 1500)
    ipcmd.ip("addr", "add", AGENT_UNDERLAY, "dev", "oc-tp-u0", ns=AGENT_NS)


def remove_agent_host(owned: bool) -> None:
    """The agent's router namespaces (name and mark: ``fabric.router_namespaces``),
    then its own namespace: ``owned``, this run made it (a run stopped before the
    mark was set leaves it unmarked); else only if it carries the lab's mark."""
    AGENT_PIDFILE.unlink(missing_ok=True)
    fabric.destroy_namespaces(fabric.router_namespaces([AGENT_HOST]))
    if ipcmd.netns_exists(AGENT_NS) and (owned or ipcmd.has_lab_mark(AGENT_NS)):
        ipcmd.netns_delete(AGENT_NS)


def _earlier_agent() -> int | None:
    """The PID in AGENT_PIDFILE when it is still an ``overcast.agent`` for AGENT_HOST."""
    try:
        pid = int(AGENT_PIDFILE.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if b"overcast.agent" in cmdline and AGENT_HOST.encode() in cmdline else None


def start_agent(procs: Processes, stack: Stack, where: Path, store: str) -> None:
    """``overcast agent`` for AGENT_HOST on the run's store, in AGENT_NS;
    returns once the API lists it alive."""
    make_agent_host(procs)
    # as the lab starts its agents (not `ip netns exec`: the router namespaces it mounts
    # must be seen outside its process)
    cmd = processes.in_netns(AGENT_NS, [sys.executable, "-m", "overcast.agent",
                                        "--host", AGENT_HOST, "--store", store,
                                        "--underlay-ip", AGENT_UNDERLAY.split("/")[0]])
    agent = procs.start("agent", cmd, where / "agent.log")
    AGENT_PIDFILE.write_text(f"{agent.pid}\n")  # nsenter ... exec in place: the agent's own PID
    deadline = time.monotonic() + AGENT_READY
    while time.monotonic() < deadline:
        if agent.poll() is not None:
            raise SystemExit(f"overcast agent exited ({agent.returncode}); see {where / 'agent.log'}")
        listed = _api(stack, "GET", "/v2.0/agents", params={"host": AGENT_HOST})["agents"]
        if any(a.get("alive") for a in listed):
            return
        time.sleep(0.2)
    raise SystemExit(f"overcast agent for {AGENT_HOST} not alive within {AGENT_READY:g} s; see "
                     f"{where / 'agent.log'}")


def _api(stack: Stack, method: str, path: str, **kw: Any) -> dict[str, Any]:
    resp = httpx.request(method, stack.overcast_url + path, timeout=30,
                         headers={"X-Auth-Token": stack.admin_token}, **kw)
    if resp.status_code >= 300:
        raise SystemExit(f"{method} {path}: {resp.status_code} {resp.text}")
    body: dict[str, Any] = resp.json()
    return body


def make_public_network(stack: Stack) -> str:
    """An external network with a subnet of TEST-NET-3, the floating IPs' pool."""
    net = _api(stack, "POST", "/v2.0/networks", json={"network": {
        "name": "public", "router:external": True, "shared": False}})["network"]
    _api(stack, "POST", "/v2.0/subnets", json={"subnet": {
        "name": "public-subnet", "network_id": net["id"], "ip_version": 4,
        "cidr": PUBLIC_CIDR, "enable_dhcp": False}})
    net_id: str = net["id"]
    return net_id


def extension_aliases(stack: Stack) -> list[str]:
    return sorted(e["alias"] for e in _api(stack, "GET", "/v2.0/extensions")["extensions"])


TEMPEST_CONF = """\
[DEFAULT]
log_file = {log}
debug = true

[auth]
admin_username = admin
admin_password = {admin_password}
admin_project_name = admin
admin_domain_name = Default
use_dynamic_credentials = true
tempest_roles = member

[identity]
uri_v3 = {keystone}
auth_version = v3
region = RegionOne
v3_endpoint_type = public
disable_ssl_certificate_validation = true

[identity-feature-enabled]
api_v2 = false
api_v3 = true

[service_available]
neutron = true
{unavailable}

[network]
public_network_id = {public_network_id}
project_network_cidr = {project_cidr}
project_network_mask_bits = 24
project_networks_reachable = false
endpoint_type = publicURL
region = RegionOne
# how long tempest waits for a port to turn ACTIVE (a router interface, realized by the
# agent); without an agent (--no-agent, or not root) the ports stay DOWN, and 300 s a port
# (the default) stalled the run for many minutes
build_timeout = 30
build_interval = 1

[network-feature-enabled]
api_extensions = {extensions}
ipv6 = true
ipv6_subnet_attributes = true

[validation]
run_validation = false
"""
UNAVAILABLE = ("nova", "cinder", "glance", "swift", "heat", "designate", "octavia", "ironic",
               "barbican", "manila", "aodh", "gnocchi", "panko", "sahara", "zaqar",
               "horizon", "placement")


def write_workspace(stack: Stack, tempest: Path, results: Path, public_net: str,
                    aliases: list[str]) -> Path:
    """``tempest init`` a workspace under results and write its etc/tempest.conf."""
    ws = results / "workspace"
    subprocess.run([str(tempest), "init", "--workspace-path", str(results / "workspaces.yaml"),
                    "--name", f"overcast-{results.name}", str(ws)], check=True,
                   stdout=subprocess.DEVNULL)
    (ws / "etc" / "tempest.conf").write_text(TEMPEST_CONF.format(
        log=results / "tempest.log", admin_password=ks.PASSWORD.format("admin"),
        keystone=stack.keystone.url, public_network_id=public_net, project_cidr=PROJECT_CIDR,
        extensions=",".join(aliases),
        unavailable="\n".join(f"{s} = false" for s in UNAVAILABLE)))
    return ws


def run_tempest(procs: Processes, ws: Path, results: Path, args: argparse.Namespace) -> int:
    """tempest's exit status; -1 when interrupted (SIGINT, SIGTERM): tempest is
    stopped then, and the tests done so far are counted."""
    cmd = [str(TEMPEST_VENV / "bin" / "tempest"), "run", "--regex", args.regex,
           "--concurrency", str(args.concurrency)]
    print(f"tempest: {' '.join(cmd)} (in {ws}; output in {results / 'tempest-run.log'})",
          flush=True)
    # stestr runs the tests with ${PYTHON:-python}: tempest's own, whatever the caller's PYTHON
    env = {**os.environ, "PYTHON": str(TEMPEST_VENV / "bin" / "python")}
    proc = procs.start("tempest", cmd, results / "tempest-run.log", cwd=ws, env=env)
    try:
        return proc.wait()
    except (KeyboardInterrupt, SystemExit):
        print("tempest: interrupted; counting the tests done so far", flush=True)
        procs.stop_all()
        return -1


def from_console(log: Path) -> list[tuple[str, str]]:
    """(test id, outcome) from tempest's console output: an interrupted run's."""
    found = (CONSOLE.match(line) for line in log.read_text(errors="replace").splitlines())
    return [(m[1], CONSOLE_OUTCOMES[m[2]]) for m in found if m]


def collect(ws: Path, results: Path, interrupted: bool) -> list[tuple[str, str]]:
    """(test id, outcome) of the last run, its subunit stream kept in results."""
    if interrupted:
        return from_console(results / "tempest-run.log")
    stream = subprocess.run([str(TEMPEST_VENV / "bin" / "stestr"), "last", "--subunit"],
                            cwd=ws, capture_output=True, check=False).stdout
    (results / "tempest.subunit").write_bytes(stream)
    table = subprocess.run([str(TEMPEST_VENV / "bin" / "subunit2csv")], input=stream,
                           capture_output=True, check=False).stdout.decode(errors="replace")
    (results / "tempest.csv").write_text(table)
    rows = list(csv.reader(io.StringIO(table)))
    return [(r[0], OUTCOMES.get(r[1], r[1])) for r in rows[1:] if r]


def class_of(test_id: str) -> str:
    """``a.b.C.test_x[id-...]`` -> ``a.b.C``; ``setUpClass (a.b.C)`` -> ``a.b.C``."""
    if "(" in test_id:
        return test_id.split("(", 1)[1].rstrip(")")
    return test_id.split("[", 1)[0].rsplit(".", 1)[0]


def method_of(test_id: str) -> str:
    """``a.b.C.test_x[id-...]`` -> ``test_x``; ``setUpClass (a.b.C)`` -> ``setUpClass``."""
    if "(" in test_id:
        return test_id.split(" (", 1)[0]
    return test_id.split("[", 1)[0].rsplit(".", 1)[-1]


def suite_of(test_id: str) -> str:
    cls = class_of(test_id)
    return next((s for s in SUITES if cls.startswith(s + ".")), "other")


def report(outcomes: list[tuple[str, str]], list_failures: bool) -> str:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for test_id, outcome in outcomes:
        counts[suite_of(test_id)][outcome] += 1
    lines = [f"{'suite':30} {'pass':>6} {'fail':>6} {'skip':>6}"]
    total: Counter[str] = Counter()
    for suite in (*SUITES, "other"):
        if suite in counts:
            c = counts[suite]
            total += c
            lines.append(f"{suite:30} {c['pass']:6} {c['fail']:6} {c['skip']:6}")
    lines.append(f"{'total':30} {total['pass']:6} {total['fail']:6} {total['skip']:6}")
    if list_failures:
        lines += ["", *failures_by_class(outcomes)]
    return "\n".join(lines)


def failures_by_class(outcomes: list[tuple[str, str]]) -> list[str]:
    groups: dict[str, list[str]] = defaultdict(list)
    for test_id, outcome in outcomes:
        if outcome == "fail":
            groups[class_of(test_id)].append(method_of(test_id))
    lines = [f"failures by test class ({sum(map(len, groups.values()))} in {len(groups)}):"]
    for cls in sorted(groups):
        lines.append(f"  {cls} ({len(groups[cls])}): {', '.join(sorted(groups[cls]))}")
    return lines


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def stopped_at_exit(keep: bool) -> Iterator[Processes]:
    procs = Processes()
    try:
        yield procs
    except BaseException:
        procs.stop_all()  # on failure or interrupt, --keep or not
        raise
    if keep:
        print("kept up: " + ", ".join(f"{n} pid {p.pid}" for n, p in procs.procs
                                      if p.poll() is None and n != "tempest")
              + (f"; namespace {AGENT_NS} ('overcast lab down' removes it)"
                 if ipcmd.netns_exists(AGENT_NS) else ""))
    else:
        procs.stop_all()


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    tempest = TEMPEST_VENV / "bin" / "tempest"
    if not tempest.exists():
        raise SystemExit(f"no tempest in {TEMPEST_VENV}: run scripts/tempest")
    results = (args.results or ROOT / ".tempest-results" / time.strftime(
        "%Y%m%dT%H%M%SZ", time.gmtime())).resolve()
    if (results / "keystone").exists() and any((results / "keystone").iterdir()):
        raise SystemExit(f"{results} holds an earlier run (its Keystone, its store): give "
                         "--results a new directory")
    (results / "keystone").mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    agent = not args.no_agent and os.geteuid() == 0
    store = f"sqlite://{results / 'store.db'}" if agent else "memory:"
    with stopped_at_exit(args.keep) as procs:
        keystone = start_keystone(procs, results / "keystone", ks.free_port())
        start_overcast(procs, keystone, results, store)
        stack = Stack(keystone, keystone.overcast_url, keystone.token("admin", "admin"))
        print(f"keystone {keystone.url} (ready in {keystone.started_in:.0f} s), "
              f"overcast {stack.overcast_url}", flush=True)
        if agent:
            start_agent(procs, stack, results, store)
            print(f"agent {AGENT_HOST} alive (namespace {AGENT_NS})", flush=True)
        else:
            print("no agent (" + ("--no-agent" if args.no_agent else "not root") + "): the tests "
                  "that wait for a router interface to turn ACTIVE or need an agent listed fail",
                  flush=True)
        aliases = extension_aliases(stack)
        ws = write_workspace(stack, tempest, results, make_public_network(stack), aliases)
        ran = time.monotonic()
        rc = run_tempest(procs, ws, results, args)
        outcomes = collect(ws, results, rc == -1)
        print(report(outcomes, args.list_failures))
        (results / "summary.txt").write_text(report(outcomes, True) + "\n")
        print(f"tempest ran {time.monotonic() - ran:.0f} s, {time.monotonic() - began:.0f} s in "
              f"all (exit {rc}); results in {results}")
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
