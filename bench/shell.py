"""Commands for the benchmarks: run one, in a namespace, or as an ``ip``
batch; a failure is a :class:`BenchError` naming the command."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
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
