"""Many clients at once against real servers over one SQLite file: no address,
MAC or VNI is ever handed out twice, also across server processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from overcast.api import Api
from overcast.api.embedded import EmbeddedServer
from overcast.model import keys
from overcast.store import SqliteStore

from .helpers import assert_error, free_port

WORKERS = 32

Outcome = tuple[int, dict[str, Any]]


def parallel(urls: list[str], n: int, request: Callable[[httpx.Client, int], httpx.Response],
             workers: int = WORKERS) -> list[Outcome]:
    """Run ``request`` n times from ``workers`` threads, each with its own client;
    request i goes to ``urls[i % len(urls)]``."""
    local = threading.local()
    start = threading.Barrier(workers)

    def client(i: int) -> httpx.Client:
        url = urls[i % len(urls)]
        clients: dict[str, httpx.Client] | None = getattr(local, "clients", None)
        if clients is None:
            clients = local.clients = {}
            start.wait(timeout=30)  # all threads begin together
        if url not in clients:
            clients[url] = httpx.Client(base_url=url, timeout=60)
        return clients[url]

    def one(i: int) -> Outcome:
        r = request(client(i), i)
        return r.status_code, (r.json() if r.content else {})

    with ThreadPoolExecutor(workers) as pool:
        # hand out the first `workers` jobs so that every thread reaches the barrier
        return list(pool.map(one, range(n)))


def create(c: httpx.Client, collection: str, member: str, **attrs: Any) -> dict[str, Any]:
    r = c.post(f"/v2.0/{collection}", json={member: attrs})
    assert r.status_code == 201, r.text
    return r.json()[member]  # type: ignore[no-any-return]


def network_with_subnet(url: str, cidr: str, **subnet: Any) -> tuple[str, str]:
    with httpx.Client(base_url=url, timeout=30) as c:
        net = create(c, "networks", "network", name=f"net-{cidr}")
        sub = create(c, "subnets", "subnet", network_id=net["id"], cidr=cidr, **subnet)
    return net["id"], sub["id"]


def check_ports(outcomes: list[Outcome], expect_ok: int, pool: int | None = None) -> None:
    ok = [body["port"] for status, body in outcomes if status == 201]
    failed = [(status, body) for status, body in outcomes if status != 201]
    if pool is None:
        assert not failed, failed[:3]
    for status, body in failed:
        assert status == 409, (status, body)
        assert body["NeutronError"]["type"] == "IpAddressGenerationFailure", body
    assert len(ok) == expect_ok, (len(ok), failed[:3])
    ips = Counter(f["ip_address"] for p in ok for f in p["fixed_ips"])
    macs = Counter(p["mac_address"] for p in ok)
    assert all(len(p["fixed_ips"]) == 1 for p in ok)
    assert max(ips.values()) == 1, [ip for ip, n in ips.items() if n > 1]
    assert max(macs.values()) == 1, [m for m, n in macs.items() if n > 1]


def check_store(db: Path, subnet_id: str, ports: int) -> None:
    """What the store holds agrees with what the clients were told."""
    store = SqliteStore(str(db))
    try:
        allocations = store.range(keys.ipam(subnet_id)).kvs
        owners = Counter(json.loads(kv.value) for kv in allocations)
        assert len(allocations) == ports and max(owners.values(), default=1) == 1
        on_subnet = {p["id"]: p for p in (json.loads(kv.value)
                                          for kv in store.range(keys.obj("port")).kvs)
                     if any(f["subnet_id"] == subnet_id for f in p["fixed_ips"])}
        assert set(on_subnet) == set(owners)
        macs = {json.loads(kv.value): kv.key.rsplit("/", 1)[1]
                for kv in store.range(keys.MAC).kvs}
        assert all(macs[pid] == p["mac_address"] for pid, p in on_subnet.items())
    finally:
        store.close()


def check_vnis(outcomes: list[Outcome], n: int) -> None:
    bad = [(s, b) for s, b in outcomes if s != 201]
    assert not bad, bad[:3]
    vnis = Counter(b["network"]["provider:segmentation_id"] for _, b in outcomes)
    assert len(outcomes) == n and len(vnis) == n, [v for v, k in vnis.items() if k > 1]


def post_port(net_id: str) -> Callable[[httpx.Client, int], httpx.Response]:
    return lambda c, i: c.post("/v2.0/ports", json={"port": {"network_id": net_id,
                                                            "name": f"p{i}"}})


def post_network(c: httpx.Client, i: int) -> httpx.Response:
    return c.post("/v2.0/networks", json={"network": {"name": f"n{i}"}})


# in-process server -------------------------------------------------------------------
@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    db = tmp_path / "overcast.db"
    store = SqliteStore(str(db))
    with EmbeddedServer(Api(store)) as server:
        yield server.url, db
    store.close()


def test_parallel_ports_get_distinct_ips_and_macs(embedded: tuple[str, Path]) -> None:
    url, db = embedded
    net_id, sub_id = network_with_subnet(url, "10.0.0.0/24")
    outcomes = parallel([url], 200, post_port(net_id))
    check_ports(outcomes, 200)
    check_store(db, sub_id, 200)
    listed = httpx.get(f"{url}/v2.0/ports", params={"network_id": net_id}).json()["ports"]
    assert len(listed) == 200


def test_small_pool_fills_exactly(embedded: tuple[str, Path]) -> None:
    url, db = embedded
    net_id, sub_id = network_with_subnet(url, "10.0.0.0/29", allocation_pools=[
        {"start": "10.0.0.2", "end": "10.0.0.6"}])
    outcomes = parallel([url], 40, post_port(net_id), workers=20)
    check_ports(outcomes, 5, pool=5)
    got = sorted(f["ip_address"] for s, b in outcomes if s == 201 for f in b["port"]["fixed_ips"])
    assert got == [f"10.0.0.{i}" for i in range(2, 7)]
    check_store(db, sub_id, 5)


def test_parallel_networks_never_share_a_vni(embedded: tuple[str, Path]) -> None:
    url, _ = embedded
    check_vnis(parallel([url], 50, post_network), 50)


def test_parallel_create_and_delete_reuse_nothing_live(embedded: tuple[str, Path]) -> None:
    """Deletes running alongside creates: a freed address may be reused, a live one never."""
    url, db = embedded
    net_id, sub_id = network_with_subnet(url, "10.0.0.0/25")
    with httpx.Client(base_url=url) as c:
        doomed = [create(c, "ports", "port", network_id=net_id)["id"] for _ in range(40)]

    def job(c: httpx.Client, i: int) -> httpx.Response:
        if i % 2:
            return c.delete(f"/v2.0/ports/{doomed[i // 2]}")
        return c.post("/v2.0/ports", json={"port": {"network_id": net_id}})
    outcomes = parallel([url], 80, job, workers=16)
    assert all(s == 204 for i, (s, _) in enumerate(outcomes) if i % 2), outcomes
    made = [(s, b) for i, (s, b) in enumerate(outcomes) if not i % 2]
    check_ports(made, 40)
    ports = httpx.get(f"{url}/v2.0/ports").json()["ports"]
    assert len(ports) == 40
    ips = [f["ip_address"] for p in ports for f in p["fixed_ips"]]
    assert len(set(ips)) == 40
    check_store(db, sub_id, 40)


# separate server processes --------------------------------------------------------------
@contextmanager
def server_process(db: Path, log: Path, workers: int = 1) -> Iterator[str]:
    with started_server(db, log, workers) as (url, _proc):
        yield url


@contextmanager
def started_server(db: Path, log: Path, workers: int,
                   *extra: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "overcast.api", "--bind", f"127.0.0.1:{port}",
             "--store", f"sqlite://{db}", "--workers", str(workers), *extra],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited with {proc.returncode}: "
                                     f"{log.read_text()[-2000:]}")
            try:
                if httpx.get(url + "/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server on {url} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.parametrize("workers", [1, 3])
def test_separate_server_process(tmp_path: Path, workers: int) -> None:
    """The real server, one process or several accepting on one socket."""
    db = tmp_path / "overcast.db"
    with server_process(db, tmp_path / "server.log", workers) as url:
        net_id, sub_id = network_with_subnet(url, "10.0.0.0/24")
        check_ports(parallel([url], 200, post_port(net_id)), 200)
        check_vnis(parallel([url], 50, post_network), 50)
        # errors keep their shape through the real server
        assert_error(httpx.post(f"{url}/v2.0/ports", json={"port": {"network_id": "nope"}}),
                     404, "nope")
    check_store(db, sub_id, 200)


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[str], Path]]:
    tmp_path = tmp_path_factory.mktemp("two")
    db = tmp_path / "shared.db"
    SqliteStore(str(db)).close()  # create the schema once, before both start
    with server_process(db, tmp_path / "a.log") as a, server_process(db, tmp_path / "b.log") as b:
        yield [a, b], db


def test_two_processes_one_file_never_duplicate(two_servers: tuple[list[str], Path]) -> None:
    urls, db = two_servers
    net_id, sub_id = network_with_subnet(urls[0], "10.0.0.0/24")
    # the network made through one server is seen by the other
    seen = httpx.get(f"{urls[1]}/v2.0/networks/{net_id}")
    assert seen.status_code == 200, seen.text
    check_ports(parallel(urls, 200, post_port(net_id)), 200)
    check_store(db, sub_id, 200)
    # both servers made the project's default security group on first need: one exists
    for url in urls:
        groups = httpx.get(f"{url}/v2.0/security-groups", params={"name": "default"})
        assert len(groups.json()["security_groups"]) == 1, groups.text
    before = httpx.get(f"{urls[1]}/v2.0/networks").json()["networks"]
    check_vnis(parallel(urls, 50, post_network), 50)
    listed = httpx.get(f"{urls[1]}/v2.0/networks").json()["networks"]
    vnis = Counter(n["provider:segmentation_id"] for n in listed)
    assert len(listed) == len(before) + 50 and len(vnis) == len(listed)


def test_two_processes_small_pool(two_servers: tuple[list[str], Path]) -> None:
    urls, db = two_servers
    net_id, sub_id = network_with_subnet(urls[1], "10.1.0.0/29", allocation_pools=[
        {"start": "10.1.0.2", "end": "10.1.0.6"}])
    check_ports(parallel(urls, 40, post_port(net_id), workers=20), 5, pool=5)
    check_store(db, sub_id, 5)


# the server's worker processes ----------------------------------------------------------
def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def catches(pid: int, sig: int) -> bool:
    """Whether the process has a handler for ``sig`` (SigCgt in /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    found = re.search(r"^SigCgt:\s*([0-9a-f]+)", status, re.M)
    return found is not None and bool(int(found.group(1), 16) >> (sig - 1) & 1)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def wait_for(check: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.05)


def test_a_dead_worker_is_replaced_and_stop_ends_all(tmp_path: Path) -> None:
    db = tmp_path / "overcast.db"
    with started_server(db, tmp_path / "server.log", 2) as (url, proc):
        wait_for(lambda: len(children(proc.pid)) == 2, "two workers")
        first = children(proc.pid)
        os.kill(first[0], signal.SIGKILL)
        wait_for(lambda: len(children(proc.pid)) == 2 and first[0] not in children(proc.pid),
                 "a new worker in place of the killed one")
        net_id, sub_id = network_with_subnet(url, "10.0.0.0/24")
        check_ports(parallel([url], 60, post_port(net_id)), 60)
        workers = children(proc.pid)
        proc.terminate()
        assert proc.wait(timeout=15) == 0
        wait_for(lambda: not any(alive(w) for w in workers), "workers gone after SIGTERM")
    check_store(db, sub_id, 60)


def test_workers_do_not_outlive_a_killed_supervisor(tmp_path: Path) -> None:
    with started_server(tmp_path / "overcast.db", tmp_path / "server.log", 2) as (url, proc):
        wait_for(lambda: len(children(proc.pid)) == 2, "two workers")
        workers = children(proc.pid)
        proc.kill()
        proc.wait(timeout=10)
        wait_for(lambda: not any(alive(w) for w in workers), "workers gone with their parent")
        with pytest.raises(httpx.TransportError):
            httpx.get(url + "/", timeout=2)


def test_a_hung_worker_is_killed_after_the_stop_grace(tmp_path: Path) -> None:
    with started_server(tmp_path / "overcast.db", tmp_path / "server.log", 2,
                        "--stop-grace", "1") as (_url, proc):
        wait_for(lambda: len(children(proc.pid)) == 2, "two workers")
        workers = children(proc.pid)
        # a worker still starting has SIGTERM's default action, which the kernel
        # carries out even on a stopped process: stop one that handles it
        wait_for(lambda: catches(workers[0], signal.SIGTERM), "the worker's SIGTERM handler")
        os.kill(workers[0], signal.SIGSTOP)  # a stopped worker cannot act on SIGTERM
        t0 = time.monotonic()
        proc.terminate()
        assert proc.wait(timeout=15) == 0
        assert 0.9 < time.monotonic() - t0 < 10, "waited for the grace, then SIGKILL"
        wait_for(lambda: not any(alive(w) for w in workers), "both workers gone")


def test_several_workers_need_a_shared_store(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "overcast.api", "--bind", "127.0.0.1:1",
                          "--store", "memory:", "--workers", "2"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "--workers 2" in out.stderr and "memory:" in out.stderr, out.stderr


def test_only_quick_deaths_close_together_are_a_crash_loop() -> None:
    from overcast.api.server import CRASH_PERIOD, MAX_QUICK_CRASHES, Supervisor

    sup = Supervisor.__new__(Supervisor)
    sup.quick_crashes = []
    t = 1000.0
    # rare quick deaths, each long after the last: never a loop
    for _ in range(3 * MAX_QUICK_CRASHES):
        t += CRASH_PERIOD
        assert not sup.crash_loop(started=t - 0.5, now=t)
    # a worker that ran a while and died is not a quick death at all
    assert not any(sup.crash_loop(started=t, now=t + 30) for _ in range(10))
    # quick deaths in a row (long after the rare ones): a loop at the MAX_QUICK_CRASHES-th
    t += 2 * CRASH_PERIOD
    results = [sup.crash_loop(started=t + i, now=t + i + 0.1) for i in range(MAX_QUICK_CRASHES)]
    assert results == [False] * (MAX_QUICK_CRASHES - 1) + [True]
