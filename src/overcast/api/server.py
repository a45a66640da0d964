"""``overcast server``: run the API on the embedded (or any) store.

With a store that several processes can share (SQLite), the server runs
``--workers`` processes that accept on one listening socket: the GIL bounds
one process to one core, and request handling is CPU-bound.  The parent
binds the socket, prepares the store (schema) once, forks the workers and
supervises them: a worker that dies is replaced, SIGTERM/SIGINT stop them
all.  Correctness across workers needs nothing new: every change is one
optimistic store transaction that compares everything it read.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import sys
import time

from overcast.api import quotas
from overcast.api.auth import Auth, AuthFileError
from overcast.api.config import ApiConfig
from overcast.api.http_limits import EdgeLimits
from overcast.api.service import Api
from overcast.store import open_store

DEFAULT_STORE = "sqlite:///var/lib/overcast/overcast.db"
MAX_WORKERS = 16
CRASH_WINDOW = 2.0  # a worker dying this soon after its start is a quick crash
MAX_QUICK_CRASHES = 5  # this many quick crashes within CRASH_PERIOD: give up
CRASH_PERIOD = 60.0
POLL = 0.1  # how often the supervisor looks for workers that exited
STOP_GRACE = 10.0  # after SIGTERM, workers still running this much later are SIGKILLed
STOP_MARGIN = 1.0  # s of it a worker keeps to close its connections itself before that
PASSWORD_ENV = "OVERCAST_KEYSTONE_PASSWORD"  # the service user's password, off the command line

log = logging.getLogger("overcast.api.server")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="overcast server", description="Run the Overcast API.")
    p.add_argument("--bind", default="127.0.0.1:9696",
                   help="HOST:PORT to listen on, or HOST alone with --port (default %(default)s)")
    p.add_argument("--port", type=int, default=None,
                   help="TCP port to listen on; overrides the port of --bind")
    p.add_argument("--store", default=DEFAULT_STORE, help="store URL (default %(default)s)")
    p.add_argument("--auth", choices=["noauth", "token", "keystone"], default=None,
                   help="who may call: noauth (loopback only), token (--auth-config) or "
                   "keystone (tokens validated by Keystone, docs/keystone.md); default token "
                   "with --auth-config, else noauth")
    p.add_argument("--auth-config", help="YAML file mapping tokens to project and role; "
                   "without it the API runs in no-auth mode (bind to loopback only)")
    p.add_argument("--vni-range", default="1:16777215", help="VXLAN VNI range LO:HI")
    p.add_argument("--underlay-mtu", type=int, default=1500,
                   help="underlay MTU; VXLAN tenant networks get 50 bytes less")
    p.add_argument("--default-quota", action="append", default=[], metavar="RESOURCE=N",
                   help="a default quota limit instead of Neutron's, -1 for none (all=N: "
                        "every resource); repeatable")
    p.add_argument("--workers", type=int, default=None,
                   help="server processes (default: one per CPU for a shared store, "
                   "1 for memory:)")
    p.add_argument("--stop-grace", type=float, default=STOP_GRACE,
                   help="seconds workers get to finish after SIGTERM before SIGKILL; "
                   "requests still running a second before it are cut off (default %(default)g)")
    p.add_argument("--log-level", default="warning", type=str.lower,
                   choices=["debug", "info", "warning", "error", "critical"])
    g = p.add_argument_group("the public zone's DNS (overcast public-dns, started and stopped "
                             "with the server)")
    g.add_argument("--public-dns", metavar="IP[:PORT]",
                   help="answer the public zone here (needs a shared store, e.g. sqlite:)")
    g.add_argument("--public-zone", default="cloud.example", help="its zone (default %(default)s)")
    g.add_argument("--bind-public", action="store_true",
                   help="and keep the ports' dynamic public bindings")
    _edge_options(p)
    _keystone_options(p)
    return p.parse_args(argv)


def _keystone_options(p: argparse.ArgumentParser) -> None:
    """``--auth keystone``: where Keystone is and Overcast's service user there
    (each overrides the same setting of --keystone-config)."""
    g = p.add_argument_group("Keystone (--auth keystone; docs/keystone.md)")
    g.add_argument("--keystone-config", metavar="FILE",
                   help="YAML file with a 'keystone:' mapping of the settings below")
    g.add_argument("--keystone-url", dest="ks_url", metavar="URL",
                   help="Keystone's URL (http://HOST:5000 or .../v3)")
    g.add_argument("--keystone-user", dest="ks_username", metavar="NAME",
                   help="Overcast's service user (needs the service or admin role)")
    g.add_argument("--keystone-password", dest="ks_password", metavar="PASSWORD",
                   help=f"its password (better: the environment variable {PASSWORD_ENV})")
    g.add_argument("--keystone-project", dest="ks_project_name", metavar="NAME",
                   help="the project its token is scoped to (e.g. service)")
    g.add_argument("--keystone-user-domain", dest="ks_user_domain_name", metavar="NAME",
                   help="the user's domain (default Default)")
    g.add_argument("--keystone-project-domain", dest="ks_project_domain_name", metavar="NAME",
                   help="the project's domain (default Default)")
    g.add_argument("--token-cache-time", dest="ks_cache_ttl", type=float, metavar="S",
                   help="how long a validated token is cached at most, 0 for never; a "
                   "revoked token is accepted until then (default 300)")
    g.add_argument("--token-cache-size", dest="ks_cache_size", type=int, metavar="N",
                   help="tokens cached at most per worker (default 10000)")


def keystone_auth(args: argparse.Namespace) -> Auth:
    """The keystone mode's ``Auth`` from --keystone-config and the options over it."""
    from overcast.api.keystone import KeystoneAuth, make_config, read_config

    try:
        given = read_config(args.keystone_config) if args.keystone_config else {}
    except AuthFileError as err:
        raise SystemExit(f"overcast server: --keystone-config {err}") from None
    given.setdefault("password", os.environ.get(PASSWORD_ENV))
    given.update({k[3:]: v for k, v in vars(args).items() if k.startswith("ks_") and v is not None})
    try:
        cfg = make_config(given)
    except ValueError as err:
        raise SystemExit(f"overcast server: --auth keystone: {err} (give --keystone-url, "
                         f"--keystone-user, --keystone-password or {PASSWORD_ENV}, "
                         "--keystone-project, or --keystone-config)") from None
    return Auth.from_source(KeystoneAuth(cfg))


def start_public_dns(args: argparse.Namespace) -> subprocess.Popen[bytes] | None:
    """``overcast public-dns`` as a child process (its own: it answers DNS
    from the store), when asked; a memory store cannot be shared with it."""
    if not args.public_dns:
        return None
    if args.store.startswith("memory:"):
        raise SystemExit("overcast server: --public-dns needs a store the DNS process can open "
                         "too (e.g. --store sqlite:///var/lib/overcast/store.db), not memory:")
    argv = [sys.executable, "-m", "overcast.publicdns", "--store", args.store,
            "--listen", args.public_dns, "--zone", args.public_zone,
            "--log-level", args.log_level.upper()]
    return subprocess.Popen(argv + (["--bind-public"] if args.bind_public else []))


def stop_child(child: subprocess.Popen[bytes] | None) -> None:
    if child is None or child.poll() is not None:
        return
    child.terminate()  # by its PID
    try:
        child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _edge_options(p: argparse.ArgumentParser) -> None:
    """The HTTP edge's limits (``http_limits.EdgeLimits``), one option each."""
    d, cfg = EdgeLimits(), ApiConfig()
    g = p.add_argument_group("HTTP limits (per worker process)")
    g.add_argument("--idle-timeout", type=float, default=d.idle_timeout, metavar="S",
                   help="close a connection idle this long between requests (default %(default)g)")
    g.add_argument("--header-timeout", type=float, default=d.header_timeout, metavar="S",
                   help="close a connection whose request head is not complete this long after "
                   "it connected or began the request (default %(default)g)")
    g.add_argument("--body-timeout", type=float, default=d.body_timeout, metavar="S",
                   help="close a connection whose request body is not complete this long after "
                   "its head (default %(default)g)")
    g.add_argument("--max-header-bytes", type=int, default=d.max_header_bytes, metavar="N",
                   help="largest request line and headers; larger: 431 (default %(default)d)")
    g.add_argument("--max-body-bytes", type=int, default=cfg.max_body_bytes, metavar="N",
                   help="largest request body; larger: 413 (default %(default)d)")
    g.add_argument("--max-connections", type=int, default=d.max_connections, metavar="N",
                   help="open connections per worker, kept below the descriptor limit; at the "
                   "cap the one idle longest is closed for a new one (default %(default)d)")


def edge_limits(args: argparse.Namespace) -> EdgeLimits:
    limits = EdgeLimits(idle_timeout=args.idle_timeout, header_timeout=args.header_timeout,
                        body_timeout=args.body_timeout, max_header_bytes=args.max_header_bytes,
                        max_connections=args.max_connections)
    problems = limits.problems()
    if not args.stop_grace > 0:
        problems.append(("stop_grace", f"must be > 0, not {args.stop_grace}"))
    if args.max_body_bytes < 1:
        problems.append(("max_body_bytes", f"must be > 0, not {args.max_body_bytes}"))
    if problems:
        raise SystemExit("overcast server: " + "; ".join(
            f"--{name.replace('_', '-')} {what}" for name, what in problems))
    return limits


def settings(args: argparse.Namespace) -> tuple[ApiConfig, Auth, str, int, int]:
    """Check every option before anything starts: (config, auth, host, port, workers)."""
    host, port = bind_address(args.bind, args.port)
    lo, _, hi = args.vni_range.partition(":")
    if not (lo.isdigit() and hi.isdigit() and 1 <= int(lo) <= int(hi) <= 16_777_215):
        raise SystemExit(f"overcast server: --vni-range must be LO:HI within 1:16777215, "
                         f"not '{args.vni_range}'")
    auth = _auth(args, host)
    shared = not args.store.startswith("memory:")
    workers = args.workers
    if workers is None:
        workers = max(1, min(os.cpu_count() or 1, MAX_WORKERS)) if shared else 1
    if not 1 <= workers <= MAX_WORKERS:
        raise SystemExit(f"overcast server: --workers must be 1..{MAX_WORKERS}, not {workers}")
    if workers > 1 and not shared:
        raise SystemExit(f"overcast server: --workers {workers} needs a store the processes "
                         f"share (sqlite:///...); '{args.store}' lives in one process")
    try:
        limits = quotas.parse_defaults(args.default_quota)
    except ValueError as err:
        raise SystemExit(f"overcast server: --default-quota {err}") from None
    cfg = ApiConfig(vni_range=(int(lo), int(hi)), underlay_mtu=args.underlay_mtu,
                    max_body_bytes=args.max_body_bytes, quota_defaults=limits)
    return cfg, auth, host, port, workers


def _auth(args: argparse.Namespace, host: str) -> Auth:
    mode = args.auth or ("token" if args.auth_config else "noauth")
    if mode != "token" and args.auth_config:
        raise SystemExit(f"overcast server: --auth-config is for --auth token, not {mode}")
    if mode == "keystone":
        return keystone_auth(args)
    if mode == "token":
        if not args.auth_config:
            raise SystemExit("overcast server: --auth token needs --auth-config FILE")
        try:
            return Auth.from_file(args.auth_config)
        except AuthFileError as err:
            raise SystemExit(f"overcast server: --auth-config {err}") from None
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("overcast server: no-auth mode binds to loopback only; give "
                         "--auth-config or --auth keystone to listen on other addresses")
    return Auth.noauth()


def bind_address(bind: str, port: int | None) -> tuple[str, int]:
    """(host, port) from --bind HOST:PORT, or --bind HOST (or HOST:PORT) with
    --port; an IPv6 address bare or in brackets (``[::1]:9696``, as URLs have it)."""
    if port is not None and not 0 <= port <= 65535:
        raise SystemExit(f"overcast server: --port must be 0..65535, not {port}")
    inside, bracket, after = bind.removeprefix("[").partition("]")
    if bind.startswith("["):
        if bracket and ":" in inside and _is_ip(inside):
            if after == "" and port is not None:
                return inside, port
            if after.startswith(":") and after[1:].isdigit() and int(after[1:]) <= 65535:
                return inside, int(after[1:]) if port is None else port
    else:
        host, _, bound = bind.rpartition(":")
        if host and bound.isdigit() and int(bound) <= 65535 and (":" not in host or _is_ip(host)):
            return host, int(bound) if port is None else port
        if port is not None and bind and (":" not in bind or _is_ip(bind)):
            return bind, port  # a bare host: a name, an IPv4 or an IPv6 address
    raise SystemExit(f"overcast server: --bind must be HOST:PORT, [IPv6]:PORT (or HOST with "
                     f"--port), not '{bind}'")


def worker_grace(stop_grace: float) -> float:
    """How long a worker lets answers in progress finish after SIGTERM:
    ``--stop-grace`` less ``STOP_MARGIN`` (at least half of it), so that it
    closes its connections itself before the supervisor's SIGKILL."""
    return max(stop_grace / 2, stop_grace - STOP_MARGIN)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit it: without it the answer's body waits for the
    # ACK of its headers (Nagle), which the client delays by 40 ms
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(f"overcast server: cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(api: Api, sock: socket.socket, log_level: str,
          limits: EdgeLimits | None = None, stop_grace: float = STOP_GRACE) -> None:
    """Run one server process on an already listening socket (until SIGTERM/SIGINT)."""
    from overcast.api.http_server import HttpServer, run

    logging.getLogger("overcast.api.http").setLevel(log_level.upper())
    run(HttpServer(api, limits, grace=worker_grace(stop_grace)), sock)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg, auth, host, port, workers = settings(args)
    limits = edge_limits(args)
    open_store(args.store).close()  # fail early on a bad URL; create the schema once
    sock = listen(host, port)
    child = start_public_dns(args)
    try:
        if workers == 1:
            serve(Api(open_store(args.store), cfg, auth), sock, args.log_level, limits,
                  args.stop_grace)
            return 0
        return Supervisor(args, cfg, auth, sock, workers, limits).run()
    finally:
        stop_child(child)


class Supervisor:
    """The parent of the worker processes: starts, replaces and stops them by PID."""

    def __init__(self, args: argparse.Namespace, cfg: ApiConfig, auth: Auth,
                 sock: socket.socket, workers: int, limits: EdgeLimits | None = None) -> None:
        self.args, self.cfg, self.auth, self.sock = args, cfg, auth, sock
        self.limits = limits
        self.workers = workers
        self.children: dict[int, float] = {}  # pid -> start time
        self.stopping = False
        self.kill_at = 0.0
        self.quick_crashes: list[float] = []  # when, within the last CRASH_PERIOD
        self.gave_up = False

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for _ in range(self.workers):
            self._spawn()
        while self.children:
            try:  # polled, so that a stop escalates even while no worker exits
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                if self.stopping and time.monotonic() > self.kill_at:
                    self._signal_all(signal.SIGKILL)
                time.sleep(POLL)
                continue
            started = self.children.pop(pid, None)
            if started is None or self.stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            log.error("API worker %d exited (%s); starting a new one", pid, code)
            if self.crash_loop(started, time.monotonic()):
                log.error("API workers keep dying at start; giving up")
                self.gave_up = True
                self._stop(signal.SIGTERM, None)
                continue
            self._spawn()
        return 1 if self.gave_up else 0

    def crash_loop(self, started: float, now: float) -> bool:
        """Note a worker's death; True when quick deaths have become a loop
        (MAX_QUICK_CRASHES within CRASH_PERIOD), not a rare accident."""
        if now - started >= CRASH_WINDOW:
            return False
        self.quick_crashes = [t for t in self.quick_crashes if now - t < CRASH_PERIOD]
        self.quick_crashes.append(now)
        return len(self.quick_crashes) >= MAX_QUICK_CRASHES

    def _spawn(self) -> None:
        parent = os.getpid()
        # no SIGTERM/SIGINT between fork and the child's own handlers: the child
        # must not run the supervisor's handler (a stop would be lost)
        stops = {signal.SIGTERM, signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, stops)
        try:
            pid = os.fork()
        except OSError:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
            raise
        if pid != 0:
            self.children[pid] = time.monotonic()  # before a pending stop runs _stop
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
            return
        # the worker: default signal handling, its own store connection
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
        _die_with_parent(parent)
        code = 0
        try:
            serve(Api(open_store(self.args.store), self.cfg, self.auth), self.sock,
                  self.args.log_level, self.limits, self.args.stop_grace)
        except BaseException:  # noqa: BLE001 - reported, then the worker exits
            log.exception("API worker failed")
            code = 1
        finally:
            os._exit(code)

    def _stop(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            self.stopping = True
            self.kill_at = time.monotonic() + self.args.stop_grace
        self._signal_all(signal.SIGTERM)

    def _signal_all(self, sig: int) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to kill this worker when the supervisor dies (which it
    only does before its workers when it was killed itself), so that no worker
    outlives it holding the port."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    try:
        done = ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL),
                                                        0, 0, 0)
    except (OSError, AttributeError):
        done = -1
    if done != 0:
        log.warning("API worker %d: cannot ask to die with the supervisor", os.getpid())
    if os.getppid() != parent:  # the supervisor died before the request took effect
        os._exit(0)
