"""``overcast server`` started for a test, as a user starts it (through the
CLI's pass-through), and stopped by its PID."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(args: list[str], port: int, log: Path,
                   timeout: float = 20.0) -> Iterator[str]:
    """``overcast server ARGS`` until the block ends; yields its URL once it
    answers on ``port`` (its output goes to ``log``)."""
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "overcast.cli.main", "server", *args],
                                stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_until_up(url, proc, log, time.monotonic() + timeout)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"overcast server exited with {proc.returncode}: "
                               f"{log.read_text()}")
        try:
            httpx.get(url + "/", timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"overcast server did not answer at {url}")
