"""Commands for the benchmarks: run one, in a namespace, or as an ``ip``
batch; a failure is a :class:`BenchError` naming the command."""

from __future__ import annotations

import subprocess


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
