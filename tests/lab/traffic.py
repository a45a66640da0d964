"""Traffic inside lab VMs for the security group tests: a listener, a
connection prober and a two-way stream of numbered messages, each a small
Python script run with ``ip netns exec``, whose output lines are collected
as they come (with the CLOCK_MONOTONIC times the scripts print, comparable
with the test's own clock)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any

# accepts (and closes) connections on every port given, until killed
LISTEN = r"""
import select, socket, sys
socks = []
for port in sys.argv[1:]:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(port))); s.listen(64); socks.append(s)
print("ready", flush=True)
while True:
    for s in select.select(socks, [], [])[0]:
        try:
            s.accept()[0].close()
        except OSError:
            pass
"""

# One connection attempt after the other (50 ms each), one line per attempt:
# "open|refused|silent <monotonic start>".  A refused attempt got an answer
# (a RST): the firewall let the SYN through.  Stops when ``until`` holds
# ("answered": an attempt got an answer; "silent": three attempts in a row
# got none; "stdin": a line on stdin) or at the deadline (exit 1).
REACH = r"""
import select, socket, sys, time
host, port, until = sys.argv[1], int(sys.argv[2]), sys.argv[3]
deadline, quiet = time.monotonic() + float(sys.argv[4]), 0
while time.monotonic() < deadline:
    start = time.monotonic()
    try:
        socket.create_connection((host, port), timeout=0.05).close(); kind = "open"
    except ConnectionRefusedError:
        kind = "refused"
    except OSError:
        kind = "silent"
    print(kind, f"{start:.6f}", flush=True)
    quiet = quiet + 1 if kind == "silent" else 0
    if (until == "answered" and not quiet) or (until == "silent" and quiet == 3):
        sys.exit(0)
    if until == "stdin" and select.select([sys.stdin], [], [], 0)[0]:
        sys.exit(0)
    if not quiet:
        time.sleep(0.01)
sys.exit(1)
"""

# One end of a TCP connection ("listen" or "connect"): sends "<n>\n" every
# 20 ms and records every number it receives with the time it came ("flowing"
# once it has 10); on a line on stdin it stops and prints one JSON line: what
# it sent and received and its socket's count of retransmitted segments
# (tcp_info).
TALKER = r"""
import json, select, socket, struct, sys, threading, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "listen":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port)); s.listen(1); print("ready", flush=True); c = s.accept()[0]
else:
    c = socket.create_connection((host, port), timeout=5.0)
c.settimeout(None)
got, ended = [], []
def read():
    buf = b""
    try:
        while data := c.recv(4096):
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)  # a delayed ACK could make the peer probe (retransmit)
            now = time.monotonic(); *lines, buf = (buf + data).split(b"\n")
            had = len(got)
            got.extend((int(n), now) for n in lines)
            if had < 10 <= len(got):
                print("flowing", flush=True)
        ended.append("closed by the peer")
    except OSError as exc:
        ended.append(str(exc))
threading.Thread(target=read, daemon=True).start()
print("connected", flush=True)
sent, error = 0, ""
while not select.select([sys.stdin], [], [], 0.02)[0]:
    try:
        c.sendall(b"%d\n" % sent); sent += 1
    except OSError as exc:
        error = str(exc); break
info = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # no retries after exit
seen = list(got)
print(json.dumps({"sent": sent, "numbers": [n for n, _ in seen], "times": [t for _, t in seen],
                  "retransmitted": struct.unpack_from("I", info, 100)[0],
                  "error": error or (ended[0] if ended else "")}), flush=True)
"""


class Running:
    """A process in namespace ``ns``; its output lines are collected as they come."""

    def __init__(self, ns: str, argv: list[str]) -> None:
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, check: Callable[[list[str]], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check(list(self.lines)):
            if self.proc.poll() is not None:
                self.reader.join(1.0)
                if check(list(self.lines)):
                    return
                raise AssertionError(f"{what}: {self.proc.args!r} exited "
                                     f"{self.proc.returncode}:\n" + "\n".join(self.lines))
            assert time.monotonic() < deadline, f"not within {timeout} s: {what}:\n" + \
                "\n".join(self.lines[-20:])
            time.sleep(0.01)

    def wait_line(self, text: str, timeout: float = 10.0) -> None:
        self.wait_for(lambda lines: any(text in ln for ln in lines), timeout, repr(text))

    def finish(self, timeout: float = 10.0) -> list[str]:
        """Wait for the process to end by itself; its lines."""
        self.proc.wait(timeout)
        self.reader.join(timeout)
        return list(self.lines)

    def stop(self, timeout: float = 10.0) -> list[str]:
        """Ask the script to stop (a line on its stdin); its lines."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        return self.finish(timeout)

    def interrupt(self, timeout: float = 10.0) -> list[str]:
        """SIGINT (ping prints its summary and stops); its lines."""
        self.proc.send_signal(signal.SIGINT)
        return self.finish(timeout)

    def __enter__(self) -> Running:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def listen(ns: str, *ports: int) -> Running:
    server = Running(ns, [sys.executable, "-c", LISTEN, *map(str, ports)])
    server.wait_line("ready")
    return server


def reach(ns: str, host: str, port: int, until: str, seconds: float) -> Running:
    return Running(ns, [sys.executable, "-c", REACH, host, str(port), until, str(seconds)])


@dataclass(frozen=True)
class Attempt:
    kind: str  # open, refused, silent
    start: float

    @property
    def answered(self) -> bool:
        return self.kind != "silent"


def attempts(lines: list[str]) -> list[Attempt]:
    out = []
    for line in lines:
        kind, _, start = line.partition(" ")
        if kind in ("open", "refused", "silent"):
            out.append(Attempt(kind, float(start)))
    return out


def first_answer(lines: list[str]) -> Attempt | None:
    return next((a for a in attempts(lines) if a.answered), None)


def stream(server_ns: str, server_ip: str, client_ns: str, port: int,
           via: tuple[str, int] | None = None) -> tuple[Running, Running]:
    """Both ends of a TCP connection from ``client_ns``, each having received
    ten numbers from the other; ``via``: the address and port the client
    connects to (a floating IP's forwarded port), else the server's."""
    server = Running(server_ns, [sys.executable, "-c", TALKER, "listen", server_ip, str(port)])
    to_ip, to_port = via or (server_ip, port)
    with ExitStack() as undo:
        undo.enter_context(server)
        server.wait_line("ready")
        client = undo.enter_context(
            Running(client_ns, [sys.executable, "-c", TALKER, "connect", to_ip, str(to_port)]))
        for end in (server, client):
            end.wait_line("flowing")
        undo.pop_all()
    return server, client


def stop_all(*running: Running) -> list[list[str]]:
    """Ask them all to stop at once; their lines (a talker whose connection
    broke has stopped by itself, with its JSON line)."""
    for run in running:
        assert run.proc.stdin is not None
        try:
            run.proc.stdin.write("stop\n")
            run.proc.stdin.flush()
        except BrokenPipeError:
            pass
    return [run.finish() for run in running]


def stop_at(moment: float, *running: Running) -> list[list[str]]:
    """Let them run until ``moment`` (monotonic), then stop them all at once."""
    time.sleep(max(0.0, moment - time.monotonic()))
    return stop_all(*running)


def summary(lines: list[str]) -> dict[str, Any]:
    """The JSON line a stopped talker printed."""
    found = [ln for ln in lines if ln.startswith("{")]
    assert found, "\n".join(lines)
    result: dict[str, Any] = json.loads(found[-1])
    return result
