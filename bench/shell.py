"""Commands for the benchmarks: run one, in a namespace, or as an ``ip``
batch; a failure is a :class:`BenchError` naming the command."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path


class BenchError(Exception):
    pass


def run(argv: list[str], check: bool = True, timeout: float = 120,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=stdin)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{' '.join(argv[:8])}: timed out after {timeout}s") from exc
    if check and p.returncode != 0:
        raise BenchError(f"{' '.join(argv[:8])}: {p.stderr.strip()[:500] or 'exit ' + str(p.returncode)}")
    return p


def in_ns(ns: str, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


def ip_batch(ns: str | None, lines: list[str]) -> None:
    run(["ip", *(["-n", ns] if ns else []), "-batch", "-"], stdin="\n".join(lines) + "\n")


def stop_process(p: subprocess.Popen[bytes]) -> None:
    """Stop a process this run started, by its PID: SIGTERM, then SIGKILL."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


BENCH_DIR = Path(__file__).resolve().parent


def compile_conn_rate(workdir: Path) -> Path:
    """bench/conn_rate.c built into ``workdir`` (the new-connections/s tool)."""
    if shutil.which("cc") is None:
        raise BenchError("no C compiler (cc): run scripts/setup")
    out = workdir / "conn_rate"
    run(["cc", "-O2", "-Wall", "-o", str(out), str(BENCH_DIR / "conn_rate.c")])
    return out


def wait_ready(ok: Callable[[], bool], what: str, timeout: float,
               procs: Iterable[subprocess.Popen[bytes]], logs: Path,
               transient: tuple[type[BaseException], ...] = ()) -> None:
    """Until ``ok()``; a process of ``procs`` that exits, or ``timeout``,
    is a BenchError pointing at ``logs``; ``transient`` errors of ``ok`` are retried."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise BenchError(f"{' '.join(map(str, p.args))} exited ({p.returncode}); "
                                 f"logs in {logs}")
        try:
            if ok():
                return
        except transient:
            pass
        time.sleep(0.05)
    raise BenchError(f"{what} not ready after {timeout}s; logs in {logs}")


@dataclass
class Env:
    """What one run made, undone in ``close``: namespaces named with the run's
    own ``prefix`` (so that only they are ever deleted) and processes, by PID."""

    prefix: str
    namespaces: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def netns(self, role: str) -> str:
        """A fresh namespace ``prefix + role``, IPv6 off, ``lo`` up."""
        name = self.prefix + role
        if name in run(["ip", "netns", "list"]).stdout.split():
            raise BenchError(f"namespace {name} already exists")
        self.namespaces.append(name)
        run(["ip", "netns", "add", name])
        run(in_ns(name, ["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                         "net.ipv6.conf.default.disable_ipv6=1"]))
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        return name

    def start(self, argv: list[str]) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(p)
        return p

    def stop(self, p: subprocess.Popen[bytes]) -> None:
        stop_process(p)
        if p in self.procs:
            self.procs.remove(p)

    def close(self) -> None:
        for p in list(reversed(self.procs)):
            try:
                self.stop(p)
            except Exception as exc:  # noqa: BLE001 - clean up the rest anyway
                print(f"cleanup: process {p.pid}: {exc}", file=sys.stderr)
        existing = set(run(["ip", "netns", "list"], check=False).stdout.split())
        for name in reversed(self.namespaces):
            if name.startswith(self.prefix) and name in existing:
                run(["ip", "netns", "delete", name], check=False)
        self.namespaces.clear()
