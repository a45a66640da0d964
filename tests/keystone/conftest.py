"""A real Keystone for the keystone auth tests: the ``keystone`` package from
PyPI in its own virtualenv (``.venv-keystone``, made by scripts/setup; or
``OVERCAST_KEYSTONE_VENV``) on SQLite, served on a free 127.0.0.1 port by the
standard library's WSGI server (``keystone_wsgi.py``), for the whole session.

What it holds: the bootstrap admin (project ``admin``, role ``admin``; Keystone's
roles admin, member and reader, each implying the next), project ``alpha`` with
a member ``alice`` and a reader ``rita``, project ``beta`` with a member
``bob``, Overcast's service user ``overcast`` (role ``service`` in project
``service``), and a ``network`` service whose endpoints point at the Overcast
server of ``overcast_url`` (the port is chosen here, the server binds it later).
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("OVERCAST_KEYSTONE_VENV") or ROOT / ".venv-keystone")
WSGI = Path(__file__).with_name("keystone_wsgi.py")
START_TIMEOUT = 120.0  # s: a loaded machine takes long to import Keystone
PASSWORD = "secret-{}"  # each user's password: its name in it
FIGURES: list[str] = []  # measurements, printed in the terminal summary
USERS = {  # name: (project, role)
    "alice": ("alpha", "member"),
    "rita": ("alpha", "reader"),
    "bob": ("beta", "member"),
    "overcast": ("service", "service"),
}

CONF = """\
[DEFAULT]
log_file = {dir}/keystone.log
[database]
connection = sqlite:///{dir}/keystone.db
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = {dir}/fernet-keys
[credential]
key_repository = {dir}/credential-keys
[identity]
# bcrypt's fewest rounds: test passwords, checked at every token request
password_hash_rounds = 4
[cache]
enabled = false
"""


@dataclass
class Keystone:
    url: str  # .../v3
    overcast_url: str  # the network endpoint in the catalog
    dir: Path
    pid: int
    started_in: float  # s, from nothing to a provisioned Keystone
    projects: dict[str, str] = field(default_factory=dict)  # name -> id
    _client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=120))

    def password(self, user: str) -> str:
        return PASSWORD.format(user)

    def token(self, user: str, project: str | None = None, *, system: bool = False) -> str:
        """A new token of ``user`` (its own project unless told; system scope)."""
        scope: dict[str, Any] = ({"system": {"all": True}} if system else {"project": {
            "name": project or USERS.get(user, ("admin",))[0], "domain": {"id": "default"}}})
        return self.token_of({"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": self.password(user)}}},
            scope)

    @overload
    def token_of(self, identity: dict[str, Any], scope: dict[str, Any] | None = None) -> str: ...

    @overload
    def token_of(self, identity: dict[str, Any], scope: dict[str, Any] | None = None, *,
                 check: bool) -> str | None: ...

    def token_of(self, identity: dict[str, Any], scope: dict[str, Any] | None = None, *,
                 check: bool = True) -> str | None:
        """A token of this identity; None if Keystone refuses it and not ``check``."""
        auth: dict[str, Any] = {"identity": identity, **({"scope": scope} if scope else {})}
        resp = self._client.post(f"{self.url}/auth/tokens?nocatalog", json={"auth": auth})
        if resp.status_code != 201 and not check:
            return None
        assert resp.status_code == 201, resp.text
        token: str = resp.headers["x-subject-token"]
        return token

    def call(self, method: str, path: str, token: str, **kw: Any) -> httpx.Response:
        return self._client.request(method, f"{self.url}{path}",
                                    headers={"X-Auth-Token": token, **kw.pop("headers", {})},
                                    **kw)

    def revoke(self, token: str) -> None:
        resp = self.call("DELETE", "/auth/tokens", token, headers={"X-Subject-Token": token})
        assert resp.status_code == 204, resp.text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _manage(conf: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(VENV / "bin" / "keystone-manage"), "--config-file", str(conf),
                             *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _finish(*procs: subprocess.Popen[bytes]) -> None:
    for p in procs:
        _, err = p.communicate(timeout=START_TIMEOUT)
        assert p.returncode == 0, f"{p.args!r} failed:\n{err.decode(errors='replace')[-2000:]}"


def _wait_for(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    """Poll until Keystone answers ``url`` (no fixed sleep)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"Keystone exited ({server.returncode}):\n"
                                 f"{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"Keystone did not answer {url} within {START_TIMEOUT} s")


def _admin_token(client: httpx.Client, url: str, server: subprocess.Popen[bytes]) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": PASSWORD.format("admin")}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    resp = client.post(f"{url}/auth/tokens?nocatalog", json=body)
    assert resp.status_code == 201, resp.text
    return resp.headers["x-subject-token"]


def _provision(ks: Keystone, admin: str) -> None:
    """Projects, users, their roles and the network service, through Keystone's API."""
    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = ks.call("POST", path, admin, json=body)
        assert resp.status_code == 201, f"POST {path}: {resp.text}"
        data: dict[str, Any] = resp.json()
        return data

    roles = {r["name"]: r["id"] for r in ks.call("GET", "/roles", admin).json()["roles"]}
    if "service" not in roles:  # bootstrap makes it since Keystone 2024.2
        roles["service"] = post("/roles", {"role": {"name": "service"}})["role"]["id"]
    for name in ("alpha", "beta", "service"):
        ks.projects[name] = post("/projects", {"project": {"name": name, "domain_id": "default"}}
                                 )["project"]["id"]
    ks.projects["admin"] = ks.call("GET", "/projects?name=admin", admin).json()["projects"][0]["id"]
    for user, (project, role) in USERS.items():
        uid = post("/users", {"user": {"name": user, "domain_id": "default",
                                       "password": ks.password(user)}})["user"]["id"]
        resp = ks.call("PUT", f"/projects/{ks.projects[project]}/users/{uid}/roles/{roles[role]}",
                       admin)
        assert resp.status_code == 204, resp.text
    service = post("/services", {"service": {"type": "network", "name": "neutron"}})["service"]
    for interface in ("public", "internal"):
        post("/endpoints", {"endpoint": {"service_id": service["id"], "interface": interface,
                                         "region_id": "RegionOne", "url": ks.overcast_url}})


@pytest.fixture(scope="session")
def keystone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keystone]:
    assert (VENV / "bin" / "keystone-manage").exists(), (
        f"no Keystone in {VENV}: run scripts/setup (or set OVERCAST_KEYSTONE_VENV)")
    began, cpu = time.monotonic(), _children_cpu()
    where = tmp_path_factory.mktemp("keystone")
    conf = where / "keystone.conf"
    conf.write_text(CONF.format(dir=where))
    port, overcast_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}/v3"
    ids = ["--keystone-user", str(os.getuid()), "--keystone-group", str(os.getgid())]
    # independent steps at once: on a loaded machine each one is mostly waiting for a CPU
    _finish(_manage(conf, "db_sync"), _manage(conf, "fernet_setup", *ids),
            _manage(conf, "credential_setup", *ids))
    synced = time.monotonic()
    bootstrap = _manage(conf, "bootstrap", "--bootstrap-password", PASSWORD.format("admin"),
                        "--bootstrap-region-id", "RegionOne", "--bootstrap-admin-url", url,
                        "--bootstrap-public-url", url, "--bootstrap-internal-url", url)
    env = {**os.environ, "OS_KEYSTONE_CONFIG_FILES": str(conf)}
    with open(where / "wsgi.log", "wb") as out:
        server = subprocess.Popen([str(VENV / "bin" / "python"), str(WSGI), str(port)],
                                  env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _finish(bootstrap)
        _wait_for(url, server, where / "wsgi.log")
        answering = time.monotonic()
        ks = Keystone(url, f"http://127.0.0.1:{overcast_port}", where, server.pid, 0.0)
        _provision(ks, _admin_token(ks._client, url, server))
        ks.started_in = time.monotonic() - began
        FIGURES.append(f"keystone fixture: Keystone started and provisioned in "
                       f"{ks.started_in:.1f} s (db_sync, fernet_setup, credential_setup "
                       f"{synced - began:.1f} s; bootstrap and /v3 answering "
                       f"{answering - synced:.1f} s; provisioning {time.monotonic() - answering:.1f} "
                       f"s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
                       f"CPU time of Keystone's processes {_cpu_seconds(server.pid, cpu):.1f} s)")
        yield ks
    finally:
        _stop(server)


def _children_cpu() -> float:
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    return done.ru_utime + done.ru_stime


def _cpu_seconds(pid: int, before: float) -> float:
    """User and system time of the finished keystone-manage runs and of the
    running server ``pid``: what the fixture costs whatever the machine's load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    running = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return _children_cpu() - before + running


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        os.kill(server.pid, signal.SIGTERM)  # by its PID
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGKILL)
            server.wait()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in FIGURES:
        terminalreporter.write_line(line)
