"""The HTTP edge's limits and protocol answers (issue 7, items 12-15), over
raw sockets where a well-behaved client could not show them: timeouts,
the request-head limit, the connection cap, clients that leave mid-body,
methods, malformed requests, HEAD, and heavy requests kept off the loop."""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import logging
import resource
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from overcast.api import Api, Auth
from overcast.api.config import ApiConfig
from overcast.api.embedded import EmbeddedServer
from overcast.api.http_limits import EdgeLimits
from overcast.api.quotas import NO_LIMITS
from overcast.api.wire import Request, Response
from overcast.store import MemoryStore

from .helpers import assert_error

UNLIMITED = ApiConfig(quota_defaults=NO_LIMITS)  # big listings and bulks in one project
FAST = EdgeLimits(idle_timeout=0.5, header_timeout=0.5, body_timeout=0.5)


@contextmanager
def server(limits: EdgeLimits | None = None, api: Api | None = None) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(api or Api(MemoryStore(), UNLIMITED), limits=limits) as srv:
        yield srv


def connect(srv: EmbeddedServer) -> socket.socket:
    host, port = srv.url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def request(sock: socket.socket, method: str = "GET", path: str = "/",
            headers: str = "") -> tuple[int, dict[str, str], bytes]:
    """One request on a kept-alive socket: (status, headers, body)."""
    sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n".encode())
    return read_response(sock, head_only=method == "HEAD")


class _KeptReader(io.BufferedReader):
    """One connection's read buffer, shared by the answers read from it: a
    reader per answer would lose what it read ahead of the next answer (two
    answers that arrive together)."""

    def close(self) -> None:  # the connection outlives each answer
        pass


_READERS: weakref.WeakKeyDictionary[socket.socket, _KeptReader] = weakref.WeakKeyDictionary()


class _Connection:
    """What ``http.client.HTTPResponse`` reads from: the socket's one reader."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def makefile(self, mode: str) -> _KeptReader:
        reader = _READERS.get(self.sock)
        if reader is None:
            reader = _READERS[self.sock] = _KeptReader(socket.SocketIO(self.sock, "rb"))
        return reader


def read_response(sock: socket.socket, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
    resp = http.client.HTTPResponse(_Connection(sock),  # type: ignore[arg-type]
                                    method="HEAD" if head_only else "GET")
    resp.begin()
    body = resp.read()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """The server closes this connection within ``seconds`` (a read sees EOF or a reset)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def exchange(srv: EmbeddedServer, data: bytes) -> tuple[int, dict[str, str], bytes]:
    with connect(srv) as sock:
        sock.sendall(data)
        return read_response(sock)


def neutron_error(status: int, headers: dict[str, str], body: bytes, want: int) -> dict[str, str]:
    assert status == want, (status, body)
    assert headers["content-type"] == "application/json"
    err = json.loads(body)["NeutronError"]
    assert set(err) == {"type", "message", "detail"} and err["message"], err
    return err  # type: ignore[no-any-return]


# item 13: timeouts -------------------------------------------------------------------
def test_a_connection_idle_after_its_answer_is_closed_after_the_idle_timeout() -> None:
    with server(EdgeLimits(idle_timeout=0.5, header_timeout=30)) as srv, connect(srv) as sock:
        assert request(sock)[0] == 200
        start = time.monotonic()
        assert closed_within(sock, 5)
        assert 0.4 < time.monotonic() - start < 3
        with connect(srv) as busy:  # a connection that keeps asking stays open
            for _ in range(4):
                assert request(busy)[0] == 200
                time.sleep(0.2)  # pacing the client: under the timeout between requests


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout() -> None:
    with server(EdgeLimits(idle_timeout=30, header_timeout=0.5)) as srv, connect(srv) as sock:
        assert closed_within(sock, 5)


def test_a_head_trickled_in_is_closed_after_the_header_timeout() -> None:
    """slowloris: a byte now and then does not keep an unfinished head alive."""
    with server(EdgeLimits(idle_timeout=30, header_timeout=0.5)) as srv, connect(srv) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")
        start = time.monotonic()
        sock.settimeout(0.1)
        closed = False
        while not closed and time.monotonic() - start < 5:
            try:
                sock.sendall(b"X-a: b\r\n")
                closed = sock.recv(1) == b""
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
        assert closed and time.monotonic() - start < 3


def test_a_body_trickled_in_is_closed_after_the_body_timeout() -> None:
    with server(EdgeLimits(idle_timeout=30, body_timeout=0.5)) as srv, connect(srv) as sock:
        sock.sendall(b"POST /v2.0/networks HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{")
        assert closed_within(sock, 5)


def test_a_client_that_reads_no_answers_is_cut_off() -> None:
    """Pipelined requests with no answer read: the server stops reading, and
    drops the connection once its output has been stuck for the idle timeout."""
    with server(EdgeLimits(idle_timeout=0.5)) as srv, connect(srv) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        flood = b"GET /openapi.json HTTP/1.1\r\nHost: t\r\n\r\n" * 1000
        sock.settimeout(0.2)
        start, cut = time.monotonic(), False
        while not cut and time.monotonic() - start < 10:
            try:
                sock.send(flood)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                cut = True
        assert cut and time.monotonic() - start < 5
        _wait_for(lambda: not srv.http.conns, 5, "the connection forgotten")


@pytest.mark.parametrize("connection", ["keep-alive", "close"])
def test_a_slow_reader_of_a_large_answer_gets_all_of_it(connection: str) -> None:
    """Output that keeps moving is not stuck, however long it takes (on a
    kept-alive connection, and on one that ends after the answer)."""
    srv = EmbeddedServer(Api(MemoryStore(), UNLIMITED), limits=EdgeLimits(idle_timeout=0.5))
    # connections inherit it: a small kernel buffer, so the answer waits in the server
    srv.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    with srv:
        bulk = json.dumps({"networks": [{"name": "n" * 200} for _ in range(1000)]}).encode()
        for _ in range(3):
            assert httpx.post(srv.url + "/v2.0/networks", content=bulk).status_code == 201
        with connect(srv) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            sock.sendall(f"GET /v2.0/networks HTTP/1.1\r\nHost: t\r\n"
                         f"Connection: {connection}\r\n\r\n".encode())
            data, start = b"", time.monotonic()
            while not _complete(data) and (chunk := sock.recv(32768)):
                data += chunk
                time.sleep(0.02)  # the client's pace: about 1 MB/s at most
            took = time.monotonic() - start
    head, _, body = data.partition(b"\r\n\r\n")
    assert took > 1  # twice the idle timeout, and more
    assert head.startswith(b"HTTP/1.1 200") and len(json.loads(body)["networks"]) == 3000


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), None)
    return bool(sep) and length is not None and len(body) >= length


# item 13: the request-head limit ---------------------------------------------------------
def test_a_head_above_the_limit_is_431_and_one_below_it_is_served() -> None:
    with server() as srv:
        ok = exchange(srv, b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 60_000 + b"\r\n\r\n")
        assert ok[0] == 200
        with connect(srv) as sock:
            sender = _send_in_background(sock, b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: ",
                                         16 << 20)  # 16 MiB, never finished
            status, headers, body = read_response(sock)
            sender.join(10)
        neutron_error(status, headers, body, 431)
        assert headers["connection"] == "close"


def test_unfinished_huge_heads_do_not_grow_the_server(tmp_path: Path) -> None:
    """Four 64 MiB heads: the worker stops reading each at the limit."""
    with overcast_server(tmp_path) as (port, proc):
        before = _rss_kib(proc.pid)
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
        senders = [_send_in_background(s, b"GET / HTTP/1.1\r\nX-Big: ", 64 << 20) for s in socks]
        for sender in senders:
            sender.join(30)
        grown = _rss_kib(proc.pid) - before
        for s in socks:
            s.close()
        assert _answers(port)
    assert grown < 16 * 1024, f"the server grew by {grown} KiB"


@contextmanager
def overcast_server(tmp_path: Path, nofile: int | None = None, args: tuple[str, ...] = ()
                    ) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """``overcast server`` on memory: (one worker, the process itself), with at
    most ``nofile`` descriptors; stopped by its PID."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])

    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from overcast.cli.main import main; "
             "sys.exit(main())", "server", "--bind", f"127.0.0.1:{port}", "--store", "memory:",
             *args],
            stdout=out, stderr=subprocess.STDOUT, preexec_fn=limit)
        try:
            _wait_for(lambda: _answers(port) or proc.poll() is not None, 20, "server up")
            assert proc.poll() is None, log.read_text()
            yield port, proc
            # running still, unless the test stopped it itself
            assert proc.returncode is not None or proc.poll() is None, log.read_text()
        finally:
            proc.terminate()
            proc.wait(10)


def test_overcast_server_takes_the_limits_from_its_options(tmp_path: Path) -> None:
    opts = ("--idle-timeout", "0.5", "--header-timeout", "0.5", "--max-header-bytes", "2048")
    with overcast_server(tmp_path, args=opts) as (port, _):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            assert request(sock)[0] == 200
            assert closed_within(sock, 5)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n")
            assert read_response(sock)[0] == 431


def _send_in_background(sock: socket.socket, start: bytes, size: int) -> threading.Thread:
    def send() -> None:
        try:
            sock.sendall(start)
            chunk = b"a" * (1 << 20)
            for _ in range(size // len(chunk)):
                sock.sendall(chunk)
        except OSError:
            pass  # the server stopped reading and closed: what is tested

    t = threading.Thread(target=send, daemon=True)
    t.start()
    return t


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# item 13: the connection cap ------------------------------------------------------------
def test_at_the_cap_the_connection_idle_longest_makes_room() -> None:
    with server(EdgeLimits(max_connections=3)) as srv:
        socks = [connect(srv) for _ in range(3)]
        for s in socks:  # each answered once, oldest first: all idle now
            assert request(s)[0] == 200
        with connect(srv) as newcomer:
            assert request(newcomer)[0] == 200
            assert closed_within(socks[0], 5)
            assert request(socks[1])[0] == 200 and request(socks[2])[0] == 200
        for s in socks:
            s.close()


def test_idle_connections_beyond_the_descriptor_limit_do_not_lock_new_clients_out(
        tmp_path: Path) -> None:
    """600 idle connections to a worker that may open 256 descriptors:
    every new client is still answered, at once."""
    with overcast_server(tmp_path, nofile=256) as (port, _):
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(600)]
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
                for _ in range(20):  # a new connection each time: no keep-alive
                    assert c.get("/", headers={"Connection": "close"}).status_code == 200
        finally:
            for s in idle:
                s.close()


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.05)


def test_the_cap_stays_below_the_descriptor_limit() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert EdgeLimits(max_connections=10**9).connection_cap() < soft
    assert EdgeLimits(max_connections=5).connection_cap() == 5


# item 14: a client that leaves mid-body ------------------------------------------------------
def test_a_client_leaving_mid_body_is_one_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with server() as srv:
        with connect(srv) as sock:
            sock.sendall(b"POST /v2.0/networks HTTP/1.1\r\nHost: t\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"net")
        _wait_for(lambda: any(r.levelno >= logging.ERROR or "left" in r.getMessage()
                              for r in caplog.records), 5, "the server noticing")
        assert request(connect(srv))[0] == 200
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert errors == [], [r.getMessage() for r in errors]
    left = [r for r in caplog.records if "left" in r.getMessage()]
    assert len(left) == 1 and left[0].levelno == logging.DEBUG and left[0].exc_info is None


# item 15: methods, malformed requests, HEAD ------------------------------------------------
@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    path = tmp_path_factory.mktemp("edge") / "tokens.yaml"
    path.write_text("tokens:\n  t-alice: {project_id: alice, role: member}\n")
    with EmbeddedServer(Api(MemoryStore(), auth=Auth.from_file(path))) as srv:
        yield srv


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE"])
@pytest.mark.parametrize("path", ["/", "/v2.0/networks", "/nothing"])
def test_options_and_trace_are_405_in_the_neutron_shape(token_server: EmbeddedServer,
                                                        method: str, path: str) -> None:
    r = httpx.request(method, token_server.url + path)
    assert r.headers["content-type"] == "application/json"
    assert_error(r, 405, method, type="HTTPMethodNotAllowed")


@pytest.mark.parametrize("data", [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
])
def test_malformed_requests_are_400_in_the_neutron_shape(token_server: EmbeddedServer,
                                                         data: bytes) -> None:
    status, headers, body = exchange(token_server, data)
    assert neutron_error(status, headers, body, 400)["type"] == "HTTPBadRequest"
    assert headers["connection"] == "close"


def test_head_answers_as_get_without_the_body(token_server: EmbeddedServer) -> None:
    alice = {"X-Auth-Token": "t-alice"}
    net = httpx.post(token_server.url + "/v2.0/networks", json={"network": {"name": "h"}},
                     headers=alice).json()["network"]
    for path, headers in [("/", {}), ("/v2.0", {}), ("/v2.0/networks", alice),
                          (f"/v2.0/networks/{net['id']}", alice), ("/v2.0/extensions", alice),
                          ("/v2.0/networks", {}), ("/v2.0/nothing", alice)]:
        get = httpx.get(token_server.url + path, headers=headers)
        head = httpx.head(token_server.url + path, headers=headers)
        assert (head.status_code, head.content) == (get.status_code, b""), path
        assert head.headers["content-length"] == str(len(get.content)), path
        assert head.headers["content-type"] == get.headers["content-type"], path
    assert httpx.head(token_server.url + "/").status_code == 200
    assert httpx.head(token_server.url + "/v2.0/networks", headers=alice).status_code == 200


def test_head_keeps_the_connection_usable(token_server: EmbeddedServer) -> None:
    with connect(token_server) as sock:
        assert request(sock, "HEAD")[0] == 200
        status, _, body = request(sock)
        assert status == 200 and json.loads(body)["versions"]


def test_a_body_above_the_limit_is_413_before_it_is_read() -> None:
    from overcast.api import ApiConfig

    with server(api=Api(MemoryStore(), ApiConfig(max_body_bytes=1000))) as srv:
        status, headers, body = exchange(
            srv, b"POST /v2.0/networks HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n")
        neutron_error(status, headers, body, 413)
        chunked = (b"POST /v2.0/networks HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                   + b"400\r\n" + b" " * 0x400 + b"\r\n") * 2
        neutron_error(*exchange(srv, chunked), 413)


@pytest.mark.parametrize("count", [4, 200])  # 200: more than one batch on the loop
def test_pipelined_requests_are_answered_in_order(count: int) -> None:
    with server() as srv, connect(srv) as sock:
        sock.sendall(b"GET /v2.0 HTTP/1.1\r\nHost: t\r\n\r\n" * (count - 1)
                     + b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    answers = data.split(b"HTTP/1.1 ")[1:]
    assert [a[:3] for a in answers] == [b"200"] * count
    assert all(b'"resources"' in a for a in answers[:-1]) and b'"versions"' in answers[-1]


def test_the_asgi_app_answers_methods_and_head_the_same_way() -> None:
    from overcast.api import create_app

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(Api(MemoryStore(), UNLIMITED)))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return [await c.options("/"), await c.head("/"), await c.get("/")]

    options, head, get = asyncio.run(go())
    assert_error(options, 405, "OPTIONS")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(get.content))


# item 12: heavy requests leave the loop ---------------------------------------------------------
class GatedApi(Api):
    """Every POST waits for ``gate`` (a stand-in for a request that takes long)."""

    def __init__(self) -> None:
        super().__init__(MemoryStore(), UNLIMITED)
        self.gate = threading.Event()
        self.entered = threading.Event()

    def handle(self, req: Request) -> Response:
        if req.method == "POST":
            self.entered.set()
            self.gate.wait(30)
        return super().handle(req)


def test_a_bulk_create_does_not_stall_other_clients() -> None:
    api = GatedApi()
    bulk: dict[str, list[object]] = {"networks": [{} for _ in range(1000)]}  # 3 KB: small
    with server(api=api) as srv:
        result: list[httpx.Response] = []
        poster = threading.Thread(target=lambda: result.append(
            httpx.post(srv.url + "/v2.0/networks", json=bulk, timeout=30)))
        poster.start()
        try:
            assert api.entered.wait(10)
            start = time.monotonic()
            r = httpx.get(srv.url + "/", timeout=2)
            assert r.status_code == 200 and time.monotonic() - start < 0.5
        finally:
            api.gate.set()
            poster.join(30)
        assert result[0].status_code == 201 and len(result[0].json()["networks"]) == 1000


def test_a_real_bulk_create_leaves_get_root_quick() -> None:
    bulk = json.dumps({"networks": [{} for _ in range(1000)]}).encode()
    with server() as srv:
        done = threading.Event()
        result: list[httpx.Response] = []

        def post() -> None:  # five bulk creates, one after the other
            with httpx.Client(base_url=srv.url, timeout=60) as c:
                result.extend(c.post("/v2.0/networks", content=bulk) for _ in range(5))
            done.set()

        threading.Thread(target=post, daemon=True).start()
        slowest = 0.0
        with httpx.Client(base_url=srv.url, timeout=5) as c:
            while not done.is_set():
                start = time.monotonic()
                assert c.get("/").status_code == 200
                slowest = max(slowest, time.monotonic() - start)
        assert [r.status_code for r in result] == [201] * 5
        assert slowest < 0.5, f"GET / took {slowest:.2f}s during a bulk create"


@pytest.mark.parametrize("method,body,slow", [
    ("POST", b'{"network": {"name": "x"}}', False),
    ("POST", b' { "networks" : [{}, {}]}', True),  # a bulk create, however small
    ("POST", b'{"port": {"name": "' + b"x" * 5000 + b'"}}', True),  # above 4 KiB
    ("PUT", b'{"port": {"name": "' + b"x" * 5000 + b'"}}', True),
    ("PUT", b'{"port": {"name": "x"}}', False),
])
def test_which_bodies_leave_the_event_loop(method: str, body: bytes, slow: bool) -> None:
    from overcast.api.app import Edge

    edge = Edge(Api(MemoryStore(), UNLIMITED))
    assert edge.slow(Request(method, "/v2.0/networks/abc" if method == "PUT" else
                             "/v2.0/networks", body=body)) is slow


# the review of the edge: abandoned pool jobs, eviction, h2c, linger, encoding ------------------
LISTING = b"GET /v2.0/networks HTTP/1.1\r\nHost: t\r\n\r\n"


class ListingApi(Api):
    """Every listing of networks waits for ``gate``; ``listings`` counts those that ran."""

    def __init__(self) -> None:
        super().__init__(MemoryStore(), UNLIMITED)
        self.gate = threading.Event()
        self.listings = 0
        self._lock = threading.Lock()

    def handle(self, req: Request) -> Response:
        if req.method == "GET" and req.path == "/v2.0/networks":
            with self._lock:
                self.listings += 1
            self.gate.wait(30)
        return super().handle(req)


def _in_pool(srv: EmbeddedServer) -> int:
    return sum(c.answering for c in list(srv.http.conns))


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_the_listing_of_a_client_that_left_before_its_turn_never_runs() -> None:
    api = ListingApi()
    with server(EdgeLimits(threads=2), api) as srv:
        socks = [connect(srv) for _ in range(8)]
        for s in socks:
            s.sendall(LISTING)
        _wait_for(lambda: _in_pool(srv) == 8, 5, "8 listings in the pool")
        for s in socks:
            _reset(s)
        _wait_for(lambda: not srv.http.conns, 5, "the clients gone")
        api.gate.set()
        with connect(srv) as sock:  # after every job queued before it, in the pool's order
            assert request(sock, path="/v2.0/networks")[0] == 200
        assert api.listings == 2 + 1  # the two running when their clients left, and this one
        _wait_for(lambda: srv.http.edge.jobs == 0, 5, "the pool's backlog empty")


class LoopHoldingApi(ListingApi):
    """``GET /v2.0`` (answered on the event loop) holds the loop until ``release``."""

    def __init__(self) -> None:
        super().__init__()
        self.holding, self.release = threading.Event(), threading.Event()

    def handle(self, req: Request) -> Response:
        if req.path == "/v2.0":
            self.holding.set()
            self.release.wait(30)
        return super().handle(req)


def test_the_listing_of_a_client_that_reset_before_it_was_read_never_runs() -> None:
    """Requests the server reads only after their clients reset (it was busy):
    no thread runs them, though every thread is free."""
    api = LoopHoldingApi()
    api.gate.set()  # listings run at once
    with server(EdgeLimits(threads=2), api) as srv:
        with connect(srv) as holder:
            holder.sendall(b"GET /v2.0 HTTP/1.1\r\nHost: t\r\n\r\n")
            assert api.holding.wait(5)
            for _ in range(8):
                s = connect(srv)
                s.sendall(LISTING)
                _reset(s)
            api.release.set()
            assert read_response(holder)[0] == 200
        _wait_for(lambda: not srv.http.conns, 5, "the clients gone")
        with connect(srv) as sock:
            assert request(sock, path="/v2.0/networks")[0] == 200
        assert api.listings == 1  # this one


def test_a_request_beyond_the_pool_backlog_is_503_at_once() -> None:
    api = ListingApi()
    with server(EdgeLimits(threads=1, backlog_per_thread=4), api) as srv:
        socks = [connect(srv) for _ in range(4)]
        for s in socks:
            s.sendall(LISTING)
        _wait_for(lambda: _in_pool(srv) == 4, 5, "4 listings in the pool")
        with connect(srv) as extra:
            extra.settimeout(5)
            err = neutron_error(*request(extra, path="/v2.0/networks"), 503)
            assert err["type"] == "ServiceUnavailable"
            assert request(extra)[0] == 200  # the connection goes on
        api.gate.set()
        for s in socks:
            assert read_response(s)[0] == 200
            s.close()


def _big_listing(srv: EmbeddedServer) -> None:
    bulk = json.dumps({"networks": [{"name": "n" * 200} for _ in range(1000)]}).encode()
    for _ in range(3):  # about 1.5 MB listed
        assert httpx.post(srv.url + "/v2.0/networks", content=bulk).status_code == 201


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    sock.settimeout(10)
    while chunk := sock.recv(65536):
        data += chunk
        if _complete(data):
            break
    return data


def _listed(data: bytes) -> int:
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return len(json.loads(body)["networks"])


@contextmanager
def _sending_listing(srv: EmbeddedServer) -> Iterator[socket.socket]:
    """A client that asked for the big listing and reads none of it yet: the
    answer waits in the server's buffer."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        host, port = srv.url.removeprefix("http://").rsplit(":", 1)
        before = set(srv.http.conns)
        sock.connect((host, int(port)))
        sock.sendall(LISTING)
        _wait_for(lambda: any(c.write_blocked for c in set(srv.http.conns) - before), 10,
                  "the listing's answer stuck in the server")
        yield sock


def _small_buffers(limits: EdgeLimits) -> EmbeddedServer:
    srv = EmbeddedServer(Api(MemoryStore(), UNLIMITED), limits=limits)
    srv.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    return srv


def test_at_the_cap_a_connection_still_sending_an_answer_is_not_the_idle_one() -> None:
    with _small_buffers(EdgeLimits(max_connections=2)) as srv:
        _big_listing(srv)
        with _sending_listing(srv) as slow, connect(srv) as idle:
            assert request(idle)[0] == 200  # idle now, and quiet since after the listing
            with connect(srv) as newcomer:
                assert request(newcomer)[0] == 200
                assert closed_within(idle, 5)
            assert _listed(_read_all(slow)) == 3000


def test_a_connection_closed_at_the_cap_while_sending_sends_all_of_its_answer() -> None:
    with _small_buffers(EdgeLimits(max_connections=1)) as srv:
        _big_listing(srv)
        with _sending_listing(srv) as slow, connect(srv) as newcomer:
            assert request(newcomer)[0] == 200
            data = _read_all(slow)
            assert _listed(data) == 3000
            assert closed_within(slow, 5)


H2C = "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_an_h2c_upgrade_is_ignored_and_the_body_read(framing: str) -> None:
    body = b'{"network": {"name": "h2"}}'
    framed = (f"Content-Length: {len(body)}\r\n\r\n".encode() + body if framing == "length" else
              f"Transfer-Encoding: chunked\r\n\r\n{len(body):x}\r\n".encode() + body
              + b"\r\n0\r\n\r\n")
    with server() as srv, connect(srv) as sock:
        sock.sendall(f"POST /v2.0/networks HTTP/1.1\r\nHost: t\r\n{H2C}".encode() + framed
                     + b"GET /v2.0/networks HTTP/1.1\r\nHost: t\r\n\r\n")
        status, _, created = read_response(sock)
        assert status == 201 and json.loads(created)["network"]["name"] == "h2"
        status, _, listed = read_response(sock)  # the connection goes on in HTTP/1.1
        assert status == 200 and [n["name"] for n in json.loads(listed)["networks"]] == ["h2"]
        status, _, _ = request(sock, headers=H2C)  # a GET asking to upgrade: answered as usual
        assert status == 200


def test_curl_http2_posts_and_puts_with_their_bodies() -> None:
    curl = shutil.which("curl")
    assert curl is not None, "curl is installed by scripts/setup"
    with server() as srv:
        def run(*args: str) -> dict[str, dict[str, str]]:
            out = subprocess.run([curl, "-sS", "--http2", "-H", "Content-Type: application/json",
                                  *args], capture_output=True, timeout=30, check=True)
            return json.loads(out.stdout)  # type: ignore[no-any-return]

        net = run("-X", "POST", "-d", '{"network": {"name": "a"}}', srv.url + "/v2.0/networks")
        assert net["network"]["name"] == "a"
        put = run("-X", "PUT", "-d", '{"network": {"name": "b"}}',
                  f"{srv.url}/v2.0/networks/{net['network']['id']}")
        assert put["network"]["name"] == "b"


def test_connections_ended_after_their_answer_close_after_the_linger() -> None:
    """40 HTTP/1.0 clients that keep their sockets open after the answer."""
    with server(EdgeLimits(linger=0.5)) as srv:
        socks = [connect(srv) for _ in range(40)]
        try:
            for s in socks:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            for s in socks:
                assert _read_all(s).startswith(b"HTTP/1.1 200")
            _wait_for(lambda: not srv.http.conns, 5, "the server's sockets closed")
        finally:
            for s in socks:
                s.close()


def test_sigterm_with_ended_connections_held_open_exits_promptly(tmp_path: Path) -> None:
    with overcast_server(tmp_path) as (port, proc):
        socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(10)]
        for s in socks:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        for s in socks:
            assert _read_all(s).startswith(b"HTTP/1.1 200")
        start = time.monotonic()
        proc.terminate()
        proc.wait(15)
        took = time.monotonic() - start
        for s in socks:
            s.close()
        assert proc.returncode == 0 and took < 3, f"the server took {took:.1f}s to stop"


class UnencodableApi(Api):
    """Answers ``?bad=1`` with a body JSON cannot hold (a bug in a handler)."""

    def handle(self, req: Request) -> Response:
        if ("bad", "1") in req.params:
            return Response(200, {"networks": {1, 2}})
        return super().handle(req)


@pytest.mark.parametrize("path", ["/v2.0", "/v2.0/networks"])  # on the loop; in the pool
def test_an_answer_that_cannot_be_encoded_is_500_and_the_connection_goes_on(path: str) -> None:
    with server(api=UnencodableApi(MemoryStore(), UNLIMITED)) as srv, connect(srv) as sock:
        sock.settimeout(5)
        neutron_error(*request(sock, path=path + "?bad=1"), 500)
        assert request(sock, path=path)[0] == 200


def test_100_continue_follows_the_answers_before_it() -> None:
    body = b'{"network": {"name": "c"}}'
    with server() as srv, connect(srv) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
                     b"POST /v2.0/networks HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode())
        data = b""
        while not data.endswith(b"\r\n\r\n") or b"100 Continue" not in data:
            data += sock.recv(65536)  # (a socket timeout fails the test)
        first, _, after = data.partition(b"HTTP/1.1 100 Continue\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 200") and b'"versions"' in first and after == b""
        sock.sendall(body)
        assert read_response(sock)[0] == 201


def test_no_100_continue_for_http_1_0() -> None:
    body = b'{"network": {"name": "c"}}'
    with server() as srv, connect(srv) as sock:
        sock.sendall(b"POST /v2.0/networks HTTP/1.0\r\nExpect: 100-continue\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        assert _read_all(sock).startswith(b"HTTP/1.1 201")


def test_the_worker_stops_within_its_grace_before_the_sigkill() -> None:
    """A client that reads none of its answer holds a stopping worker for its
    grace only: --stop-grace less a margin, so that the worker ends it itself."""
    from overcast.api.server import worker_grace

    assert worker_grace(10) == 9 and worker_grace(1) == 0.5
    srv = EmbeddedServer(Api(MemoryStore(), UNLIMITED), grace=0.5)
    srv.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    with srv:
        _big_listing(srv)
        with _sending_listing(srv):
            start = time.monotonic()
            srv.stop()
            took = time.monotonic() - start
    assert 0.4 < took < 2, f"the server took {took:.1f}s to stop"
