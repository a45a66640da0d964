"""Traffic probes inside lab namespaces: ping, TCP, raw frames, captures.

Used by the demo and the root tests to show behaviour a user would see: a
ping that passes, a TCP echo that returns, a frame that must not arrive
(proved by a capture on the receiving side).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from types import TracebackType

from overcast.lab.ipcmd import LabError

TCP_SERVER = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(1); print("ready", flush=True)
s.settimeout(float(sys.argv[2])); c, peer = s.accept(); data = c.recv(1024)
c.sendall(b"echo:" + data); c.close(); print("peer", peer[0], flush=True)
"""

TCP_CLIENT = r"""
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
c.sendall(sys.argv[4].encode()); print(c.recv(1024).decode(), flush=True)
"""

RAW_SENDER = r"""
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind((sys.argv[1], 0))
src = bytes.fromhex(sys.argv[2].replace(":", ""))
for spec in sys.argv[3:]:
    dst, ethertype = spec.split("/")
    frame = bytes.fromhex(dst.replace(":", "")) + src + bytes.fromhex(ethertype)
    s.send(frame + b"overcast-probe".ljust(46, b"\0"))
"""


def in_ns(ns: str, argv: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside ``ns``; never raises on a non-zero exit."""
    try:
        return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"in {ns}: {' '.join(argv)}: timed out after {timeout:g}s") from exc


def ping(ns: str, dst: str, count: int = 3, *extra: str) -> subprocess.CompletedProcess[str]:
    return in_ns(ns, ["ping", "-n", "-c", str(count), "-W", "1", "-i", "0.2", *extra, dst])


def tcp_echo(server_ns: str, server_ip: str, client_ns: str, port: int = 5001,
             timeout: float = 5.0, connect_port: int | None = None) -> str:
    """Open a TCP connection from ``client_ns`` to ``server_ns`` (listening on
    ``port``; the client connects to ``server_ip``:``connect_port``, by default
    the same port); returns the echo."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", server_ns, sys.executable, "-c", TCP_SERVER, str(port), str(timeout)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_line(server, "ready", timeout)
        to = port if connect_port is None else connect_port
        client = in_ns(client_ns, [sys.executable, "-c", TCP_CLIENT, server_ip, str(to),
                                   str(timeout), f"hello-from-{client_ns}"], timeout + 5)
        if client.returncode != 0:
            raise LabError(f"TCP {client_ns} -> {server_ip}:{to} failed: {client.stderr.strip()}")
        return client.stdout.strip()
    finally:
        server.kill()
        server.wait()


_iperf_port = [5400]


def tcp_rate(server_ns: str, server_ip: str, client_ns: str, seconds: int, mtu: int) -> float:
    """The rate (kbit/s) of the frames carrying one TCP stream client -> server
    (iperf3): its goodput, the first second (slow start, a shaper's burst)
    omitted, times a full segment's frame over its data (``mtu`` + 14 over
    ``mtu`` - 52: IP and TCP headers with timestamps) — the rate a
    bandwidth limit counts."""
    _iperf_port[0] += 1  # a fresh port per run: no server left in the way
    port = str(_iperf_port[0])
    server = subprocess.Popen(["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1",
                               "-B", server_ip, "-p", port],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10.0
        while True:  # until the server listens: a refused connection fails at once
            client = in_ns(client_ns, ["iperf3", "-c", server_ip, "-p", port, "-t",
                                       str(seconds + 1), "-O", "1", "-J"], seconds + 30)
            if client.returncode == 0 and "Connection refused" not in client.stdout:
                break  # (iperf3 3.12 -J may exit 0 when it could not connect)
            if "refused" not in client.stdout or time.monotonic() > deadline:
                raise LabError(f"iperf3 {client_ns} -> {server_ip}: {client.stdout[-300:]}")
            time.sleep(0.05)
    finally:
        server.kill()
        server.wait()
    try:
        goodput = float(json.loads(client.stdout)["end"]["sum_received"]["bits_per_second"])
    except (ValueError, KeyError) as exc:
        raise LabError(f"iperf3 {client_ns} -> {server_ip}: no result ({exc}): "
                       f"{client.stdout[-600:]}") from None
    return goodput * (mtu + 14) / (mtu - 52) / 1000


def send_frames(ns: str, ifname: str, src_mac: str, frames: list[tuple[str, str]]) -> None:
    """Send raw Ethernet frames ``(dst_mac, ethertype_hex)`` from ``ns``/``ifname``."""
    specs = [f"{dst}/{etype}" for dst, etype in frames]
    proc = in_ns(ns, [sys.executable, "-c", RAW_SENDER, ifname, src_mac, *specs])
    if proc.returncode != 0:
        raise LabError(f"raw send from {ns} failed: {proc.stderr.strip()}")


def _wait_line(proc: subprocess.Popen[str], needle: str, timeout: float, stderr: bool = False) -> str:
    stream = proc.stderr if stderr else proc.stdout
    assert stream is not None
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = stream.readline()
        if not line:
            break
        seen += line
        if needle in line:
            return line
    raise LabError(f"waited {timeout:g}s for {needle!r} from {proc.args!r}; got {seen!r}")


class Capture:
    """tcpdump on ``ifname`` in ``ns`` for the duration of a ``with`` block.

    ``frames`` afterwards holds one line per captured frame (``tcpdump -e``).
    """

    def __init__(self, ns: str, ifname: str, bpf: str = "", direction: str = "in") -> None:
        self.ns, self.ifname, self.bpf, self.direction = ns, ifname, bpf, direction
        self.frames: list[str] = []
        fd, self.path = tempfile.mkstemp(prefix="oc-capture-", suffix=".pcap")
        os.close(fd)
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Capture:
        # --immediate-mode: each frame is handed over as it arrives (else the kernel holds
        # frames in a ring block until it fills or times out, and a capture stopped sooner
        # writes none of them: "received by filter", never captured)
        argv = ["ip", "netns", "exec", self.ns, "tcpdump", "--immediate-mode", "-i", self.ifname,
                "-nn", "-U",
                "-Q", self.direction, "-w", self.path, *self.bpf.split()]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        _wait_line(self.proc, "listening on", 10.0, stderr=True)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self.proc is not None
        time.sleep(0.3)  # let frames in flight land
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        out = subprocess.run(["tcpdump", "-nn", "-e", "-r", self.path], capture_output=True, text=True)
        self.frames = [ln for ln in out.stdout.splitlines() if ln.strip()]
        os.unlink(self.path)

    def foreign(self, own_macs: list[str]) -> list[str]:
        """Captured frames whose source MAC is none of ``own_macs`` (the
        capturing tenant's own VMs): whatever leaked in from elsewhere."""
        own = {m.lower() for m in own_macs}
        return [ln for ln in self.frames if _src_mac(ln) not in own]


def _src_mac(line: str) -> str:
    """Source MAC of a ``tcpdump -e`` line (``TIME SRC > DST, ...``)."""
    parts = line.split()
    return parts[1].lower() if len(parts) > 1 else ""
