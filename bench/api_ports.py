"""Control-plane throughput: create N ports, list them page by page, delete them.

The same work runs three ways in one invocation, printed side by side:

* ``http``   the real API server in its own process (``python -m overcast.api``
             on the embedded SQLite store), driven by concurrent clients (one keep-alive
             http.client connection per client thread);
* ``inproc`` the API's own request handling without HTTP:
             ``Api(open_store(...)).handle(Request(...))`` on the same number
             of threads in this process;
* ``store``  raw ``transact`` writes of the keys a port create/delete touches
             (port object, IPAM key, MAC key) on the same store, same threads;
             the floor that any API on this store can reach.

Each mode gets a fresh store file in its own temporary directory.

    .venv/bin/python bench/api_ports.py                 # 10,000 ports, 100 networks, 16 clients
    .venv/bin/python bench/api_ports.py --ports 2000 --modes http,inproc
    .venv/bin/python bench/api_ports.py --ports 2000 --profile inproc   # cProfile top functions
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import json
import os
import pstats
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from overcast.api import Api, Request  # noqa: E402
from overcast.api.config import ApiConfig  # noqa: E402
from overcast.api.quotas import NO_LIMITS  # noqa: E402
from overcast.store import open_store, transact  # noqa: E402

GOAL_CREATE_RATE = 300.0  # ports/s
GOAL_CREATE_P99_MS = 50.0
PAGE_LIMIT = 500
PROFILING = False  # set by --profile: every worker thread runs under its own cProfile
PROFILES: list[cProfile.Profile] = []


# --------------------------------------------------------------------------- results
@dataclass
class OpStats:
    name: str
    latencies: list[float] = field(default_factory=list)  # seconds
    wall: float = 0.0
    items: int = 0  # ports handled (creates/deletes) or ports listed
    errors: int = 0
    server_cpu: float = float("nan")  # CPU seconds of the serving side during the op
    client_cpu: float = float("nan")  # CPU seconds of this process (the load generator)

    def cpu_ms_per_item(self, which: str) -> float:
        cpu = self.server_cpu if which == "server" else self.client_cpu
        return cpu / self.items * 1000 if self.items else float("nan")

    def rate(self) -> float:
        return self.items / self.wall if self.wall else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        xs = sorted(self.latencies)
        k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
        return xs[k] * 1000


@dataclass
class ModeResult:
    mode: str
    ops: dict[str, OpStats] = field(default_factory=dict)
    note: str = ""


# --------------------------------------------------------------------------- drivers
class Driver:
    """One way of issuing the benchmark's requests.  ``call`` returns (status, body)."""

    name = "?"

    def server_cpu(self) -> float:
        """CPU seconds the serving side used so far (in-process modes: this process,
        which includes the load generator)."""
        return _own_cpu()

    def client(self) -> Callable[[str, str, Any, list[tuple[str, str]] | None],
                                 tuple[int, Any]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class HttpDriver(Driver):
    name = "http"

    def __init__(self, workdir: Path, workers: int) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(workdir / "server.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "overcast.api", "--bind", f"127.0.0.1:{self.port}",
             "--store", f"sqlite:///{workdir}/bench.db", "--workers", str(workers),
             "--default-quota", "all=-1"],
            stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"API server exited with {self.proc.returncode}; "
                                   f"see {workdir / 'server.log'}")
            try:
                if httpx.get(self.url + "/v2.0", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("API server did not answer within 30 s")
            time.sleep(0.05)
        self._clients: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def client(self):  # type: ignore[no-untyped-def]
        # http.client, not httpx: the load generator shares the 2 cores with the
        # server, and http.client costs about a third of httpx's CPU per request
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        with self._lock:
            self._clients.append(c)

        def call(method: str, path: str, body: Any = None,
                 params: list[tuple[str, str]] | None = None) -> tuple[int, Any]:
            if path.startswith("http"):
                u = urlsplit(path)
                path = u.path + ("?" + u.query if u.query else "")
            elif params:
                path += "?" + urlencode(params)
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if data is not None else {}
            c.request(method, path, body=data, headers=headers)
            r = c.getresponse()
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
        return call

    def server_cpu(self) -> float:
        """CPU seconds used so far by the server: the supervisor and its workers."""
        return sum(_proc_cpu(pid) for pid in (self.proc.pid, *_children(self.proc.pid)))

    def close(self) -> None:
        for c in self._clients:
            c.close()
        self.proc.terminate()  # by PID: the process this driver started
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


class InprocDriver(Driver):
    name = "inproc"

    def __init__(self, workdir: Path, workers: int = 1) -> None:
        self.api = Api(open_store(f"sqlite:///{workdir}/bench.db"),
                       ApiConfig(quota_defaults=NO_LIMITS))

    def client(self):  # type: ignore[no-untyped-def]
        api = self.api

        def call(method: str, path: str, body: Any = None,
                 params: list[tuple[str, str]] | None = None) -> tuple[int, Any]:
            if "?" in path:  # a next link: split the query string
                from urllib.parse import parse_qsl, urlsplit
                u = urlsplit(path)
                path, params = u.path, parse_qsl(u.query)
            req = Request(method=method, path=path, params=list(params or []),
                          body=json.dumps(body).encode() if body is not None else b"")
            resp = api.handle(req)
            # the HTTP edge serialises every answer: do the same so that the comparison
            # isolates transport + framework, not JSON encoding
            data = json.dumps(resp.body, separators=(",", ":")) if resp.body is not None else ""
            return resp.status, (json.loads(data) if data else None)
        return call


class StoreDriver(Driver):
    """Raw ``transact`` writes of the keys a port touches; answers in the API's shapes
    so that the same workload code drives it."""

    name = "store"

    def __init__(self, workdir: Path, workers: int = 1) -> None:
        self.store = open_store(f"sqlite:///{workdir}/bench.db")
        self._lock = threading.Lock()  # the Api serialises its writers the same way

    def client(self):  # type: ignore[no-untyped-def]
        store = self.store
        lock = self._lock

        def call(method: str, path: str, body: Any = None,
                 params: list[tuple[str, str]] | None = None) -> tuple[int, Any]:
            if method == "POST" and path == "/v2.0/networks":
                nid = str(uuid.uuid4())
                with lock:
                    transact(store, lambda tx: tx.put_json(f"/oc/obj/network/{nid}",
                                                           {"id": nid, **body["network"]}))
                return 201, {"network": {"id": nid}}
            if method == "POST" and path == "/v2.0/subnets":
                sid = str(uuid.uuid4())
                with lock:
                    transact(store, lambda tx: tx.put_json(f"/oc/obj/subnet/{sid}",
                                                           {"id": sid, **body["subnet"]}))
                return 201, {"subnet": {"id": sid, **body["subnet"]}}
            if method == "POST" and path == "/v2.0/ports":
                port = dict(body["port"])
                pid = str(uuid.uuid4())
                sid = port.pop("_subnet_id")
                prefix = port.pop("_prefix")

                def create(tx: Any) -> dict[str, Any]:
                    used = {kv.key.rsplit("/", 1)[1] for kv in tx.range(f"/oc/ipam/{sid}/")}
                    n = 2
                    while f"{prefix}{n}" in used:
                        n += 1
                    ip = f"{prefix}{n}"
                    for _ in range(16):  # as the API: retry a taken random MAC
                        mac = "fa:16:3e:" + ":".join(f"{b:02x}" for b in random.randbytes(3))
                        if tx.get(f"/oc/mac/{mac}") is None:
                            break
                    obj = {"id": pid, **port, "mac_address": mac,
                           "fixed_ips": [{"subnet_id": sid, "ip_address": ip}]}
                    tx.put_json(f"/oc/ipam/{sid}/{ip}", pid)
                    tx.put_json(f"/oc/mac/{mac}", pid)
                    tx.put_json(f"/oc/obj/port/{pid}", obj)
                    return obj
                with lock:
                    obj = transact(store, create)
                return 201, {"port": obj}
            if method == "DELETE" and path.startswith("/v2.0/ports/"):
                pid = path.rsplit("/", 1)[1]

                def delete(tx: Any) -> None:
                    obj = tx.get_json(f"/oc/obj/port/{pid}")
                    for f in obj["fixed_ips"]:
                        tx.delete(f"/oc/ipam/{f['subnet_id']}/{f['ip_address']}")
                    tx.delete(f"/oc/mac/{obj['mac_address']}")
                    tx.delete(f"/oc/obj/port/{pid}")
                with lock:
                    transact(store, delete)
                return 204, None
            if method == "GET":
                # one range read of all ports, decoded, sorted by id and cut into a page:
                # what a list page costs on this store without the API's rendering
                from urllib.parse import parse_qsl, urlsplit
                if "?" in path:
                    u = urlsplit(path)
                    params = parse_qsl(u.query)
                q = dict(params or [])
                limit = int(q.get("limit", 0)) or None
                objs = sorted((json.loads(kv.value) for kv in store.range("/oc/obj/port/").kvs),
                              key=lambda o: o["id"])
                if "marker" in q:
                    ids = [o["id"] for o in objs]
                    objs = objs[ids.index(q["marker"]) + 1:]
                page = objs[:limit] if limit else objs
                out: dict[str, Any] = {"ports": page}
                if limit and len(objs) > limit:
                    out["ports_links"] = [{"rel": "next", "href":
                                           f"/v2.0/ports?limit={limit}&marker={page[-1]['id']}"}]
                return 200, json.loads(json.dumps(out))
            raise ValueError(f"store driver: unsupported {method} {path}")
        return call


# --------------------------------------------------------------------------- workload
def _own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _proc_cpu(pid: int) -> float:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cidr(i: int) -> tuple[str, str]:
    """The i-th /22 in 10.0.0.0/8 and the first three octets for the store driver."""
    second, third = divmod(i * 4, 256)
    return f"10.{second}.{third}.0/22", f"10.{second}.{third}."


def run_parallel(n: int, clients: int, make_call: Callable[[], Any],
                 work: Callable[[Any, int], int], stats: OpStats) -> None:
    """Run ``work(call, i)`` for i in range(n) on ``clients`` threads; each returns the
    number of items it handled (or -1 on error)."""
    nxt = iter(range(n))
    lock = threading.Lock()
    lat: list[list[float]] = []

    def worker() -> None:
        prof = cProfile.Profile() if PROFILING else None
        if prof:
            prof.enable()
        try:
            loop()
        finally:
            if prof:
                prof.disable()
                with lock:
                    PROFILES.append(prof)

    def loop() -> None:
        call = make_call()
        mine: list[float] = []
        lat.append(mine)
        while True:
            with lock:
                i = next(nxt, None)
            if i is None:
                return
            t0 = time.perf_counter()
            try:
                got = work(call, i)
            except Exception as exc:  # noqa: BLE001 - counted and shown, the run goes on
                got = -1
                print(f"  error: {type(exc).__name__}: {exc}", file=sys.stderr)
            mine.append(time.perf_counter() - t0)
            with lock:
                if got < 0:
                    stats.errors += 1
                else:
                    stats.items += got

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats.wall = time.perf_counter() - t0
    stats.latencies = [x for xs in lat for x in xs]


def run_mode(driver: Driver, ports: int, networks: int, clients: int) -> ModeResult:
    res = ModeResult(driver.name)
    # networks + subnets (setup, timed but not the subject)
    nets: list[tuple[str, str, str]] = []  # (network id, subnet id, ip prefix)
    setup = OpStats("setup net+subnet")
    nets_lock = threading.Lock()

    def make_net(call: Any, i: int) -> int:
        st, body = call("POST", "/v2.0/networks", {"network": {"name": f"bench-{i}"}})
        if st != 201:
            print(f"  network create -> {st} {body}", file=sys.stderr)
            return -1
        cidr, prefix = _cidr(i)
        st, sb = call("POST", "/v2.0/subnets", {"subnet": {
            "network_id": body["network"]["id"], "cidr": cidr, "ip_version": 4,
            "name": f"bench-{i}"}})
        if st != 201:
            print(f"  subnet create -> {st} {sb}", file=sys.stderr)
            return -1
        with nets_lock:
            nets.append((body["network"]["id"], sb["subnet"]["id"], prefix))
        return 1
    run_parallel(networks, clients, driver.client, make_net, setup)
    res.ops["setup"] = setup
    if len(nets) != networks:
        res.note = f"only {len(nets)} of {networks} networks created"
        return res
    nets.sort()

    # creates
    ids: list[str] = []
    create = OpStats("create")

    def make_port(call: Any, i: int) -> int:
        nid, sid, prefix = nets[i % len(nets)]
        port: dict[str, Any] = {"network_id": nid, "name": f"p{i}",
                                "device_owner": "compute:bench"}
        if driver.name == "store":
            port.update(_subnet_id=sid, _prefix=prefix)
        st, body = call("POST", "/v2.0/ports", {"port": port})
        if st != 201:
            if create.errors < 3:
                print(f"  port create -> {st} {body}", file=sys.stderr)
            return -1
        with nets_lock:
            ids.append(body["port"]["id"])
        return 1
    server0, client0 = driver.server_cpu(), _own_cpu()
    run_parallel(ports, clients, driver.client, make_port, create)
    create.server_cpu, create.client_cpu = driver.server_cpu() - server0, _own_cpu() - client0
    res.ops["create"] = create

    # list: one client follows the next links (a listing is sequential by nature)
    listing = OpStats("list page")
    call = driver.client()
    seen = 0
    t0 = time.perf_counter()
    nxt: str | None = None
    for _ in range(ports // PAGE_LIMIT + 5):  # bounded
        t1 = time.perf_counter()
        if nxt is None:
            st, body = call("GET", "/v2.0/ports", None, [("limit", str(PAGE_LIMIT))])
        else:
            st, body = call("GET", nxt)
        listing.latencies.append(time.perf_counter() - t1)
        if st != 200:
            listing.errors += 1
            break
        seen += len(body["ports"])
        links = [link["href"] for link in body.get("ports_links", []) if link["rel"] == "next"]
        if not links or not body["ports"]:
            break
        nxt = links[0]
    listing.wall = time.perf_counter() - t0
    listing.items = seen
    if seen != len(ids):
        res.note += f" listed {seen} ports, created {len(ids)}"
    res.ops["list"] = listing

    # deletes
    delete = OpStats("delete")

    def del_port(call: Any, i: int) -> int:
        st, body = call("DELETE", f"/v2.0/ports/{ids[i]}")
        if st != 204:
            if delete.errors < 3:
                print(f"  port delete -> {st} {body}", file=sys.stderr)
            return -1
        return 1
    run_parallel(len(ids), clients, driver.client, del_port, delete)
    res.ops["delete"] = delete
    return res


# --------------------------------------------------------------------------- output
def print_table(results: list[ModeResult], args: argparse.Namespace) -> None:
    print()
    print(f"ports={args.ports} networks={args.networks} clients={args.clients} "
          f"http workers={args.workers} "
          f"page limit={PAGE_LIMIT} cpus={os.cpu_count()}")
    modes = [r.mode for r in results]
    head = f"{'operation':<22}" + "".join(f"{m:>14}" for m in modes)
    if "http" in modes and len(modes) > 1:
        head += "   http/" + "  http/".join(m for m in modes if m != "http")
    head += "   goal"
    print(head)
    print("-" * len(head))

    def row(label: str, op: str, fn: Callable[[OpStats], float], fmt: str,
            goal: str = "") -> None:
        vals = [fn(r.ops[op]) if op in r.ops else float("nan") for r in results]
        line = f"{label:<22}" + "".join(f"{v:>14{fmt}}" for v in vals)
        if "http" in modes and len(modes) > 1:
            h = vals[modes.index("http")]
            ratios = [h / v if v else float("nan")
                      for m, v in zip(modes, vals, strict=True) if m != "http"]
            line += "   " + "  ".join(f"{x:>9.2f}x" for x in ratios)
        if goal:
            line += "   " + goal
        print(line)

    row("create ports/s", "create", OpStats.rate, ".0f", f">= {GOAL_CREATE_RATE:.0f}")
    row("create p50 ms", "create", lambda s: s.pct(50), ".1f")
    row("create p99 ms", "create", lambda s: s.pct(99), ".1f", f"< {GOAL_CREATE_P99_MS:.0f}")
    row("create CPU ms/port", "create", lambda s: s.cpu_ms_per_item("server"), ".2f")
    row("load gen CPU ms/port", "create", lambda s: s.cpu_ms_per_item("client"), ".2f")
    row("list ports/s", "list", OpStats.rate, ".0f")
    row(f"list page({PAGE_LIMIT}) p50 ms", "list", lambda s: s.pct(50), ".1f")
    row(f"list page({PAGE_LIMIT}) p99 ms", "list", lambda s: s.pct(99), ".1f")
    row("delete ports/s", "delete", OpStats.rate, ".0f")
    row("delete p50 ms", "delete", lambda s: s.pct(50), ".1f")
    row("delete p99 ms", "delete", lambda s: s.pct(99), ".1f")
    row("setup net+subnet/s", "setup", OpStats.rate, ".0f")
    errs = [sum(o.errors for o in r.ops.values()) for r in results]
    print(f"{'errors':<22}" + "".join(f"{e:>14}" for e in errs))
    for r in results:
        if r.note:
            print(f"note [{r.mode}]: {r.note.strip()}")
    for r in results:
        if r.mode == "http" and "create" in r.ops:
            c = r.ops["create"]
            ok = c.rate() >= GOAL_CREATE_RATE and c.pct(99) < GOAL_CREATE_P99_MS
            print(f"goal (http): {c.rate():.0f} creates/s (>= {GOAL_CREATE_RATE:.0f}), "
                  f"p99 {c.pct(99):.1f} ms (< {GOAL_CREATE_P99_MS:.0f}): "
                  f"{'MET' if ok else 'NOT MET'}")


@contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="oc-bench-api-"))
    try:
        yield d
    finally:
        if not keep:
            shutil.rmtree(d, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ports", type=int, default=10_000)
    p.add_argument("--networks", type=int, default=100)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="API server processes in http mode (default: one per CPU, "
                   "as overcast server does)")
    p.add_argument("--modes", default="http,inproc,store",
                   help="comma-separated subset of http,inproc,store (default %(default)s)")
    p.add_argument("--profile", choices=["inproc", "store"],
                   help="run this mode under cProfile and print the top functions")
    p.add_argument("--keep", action="store_true", help="keep the temporary store files")
    args = p.parse_args(argv)
    if args.ports < 1 or args.networks < 1 or args.clients < 1:
        p.error("--ports, --networks and --clients must be positive")
    if args.ports / args.networks > 1000:
        p.error("at most 1000 ports per network (each network has one /22)")
    drivers = {"http": HttpDriver, "inproc": InprocDriver, "store": StoreDriver}
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in drivers:
            p.error(f"unknown mode {m!r}")
    results = []
    for m in modes:
        with workdir(args.keep) as d:
            print(f"[{m}] {args.ports} ports over {args.networks} networks, "
                  f"{args.clients} clients ... (store {d}/bench.db)", flush=True)
            driver = drivers[m](d, args.workers)
            global PROFILING
            PROFILING = args.profile == m
            PROFILES.clear()
            try:
                r = run_mode(driver, args.ports, args.networks, args.clients)
            finally:
                PROFILING = False
                driver.close()
            results.append(r)
            c = r.ops.get("create")
            if c:
                print(f"[{m}] create {c.rate():.0f}/s, list {r.ops['list'].rate():.0f}/s, "
                      f"delete {r.ops['delete'].rate():.0f}/s", flush=True)
            if PROFILES and args.profile == m:
                out = io.StringIO()
                st = pstats.Stats(*PROFILES, stream=out)
                st.sort_stats("tottime").print_stats(25)
                st.sort_stats("cumulative").print_stats(35)
                print(out.getvalue())
    print_table(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
