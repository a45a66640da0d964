"""``--auth keystone`` against a real Keystone (tests/keystone/conftest.py):
tokens accepted, refused (missing, wrong, expired, revoked), the roles as
Neutron reads them, and the unmodified ``openstack`` CLI with password auth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from overcast.api import Api
from overcast.api.auth import Auth
from overcast.api.embedded import EmbeddedServer
from overcast.api.keystone import KeystoneAuth, KeystoneConfig
from overcast.store import MemoryStore

from .conftest import FIGURES, Keystone

TTL = 30.0  # the token cache time of the server under test
OPENSTACK = Path(sys.executable).with_name("openstack")


class Clock:
    """Wall time plus what a test skips ahead."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


class Overcast:
    def __init__(self, ks: Keystone, auth: KeystoneAuth, url: str, clock: Clock) -> None:
        self.ks, self.auth, self.url, self.clock = ks, auth, url, clock
        self.http = httpx.Client(base_url=url, timeout=180)

    def call(self, method: str, path: str, token: str | None = None,
             body: Any = None) -> httpx.Response:
        headers = {"X-Auth-Token": token} if token is not None else {}
        return self.http.request(method, path, headers=headers, json=body)

    def network(self, token: str, **attrs: Any) -> dict[str, Any]:
        resp = self.call("POST", "/v2.0/networks", token, {"network": attrs})
        assert resp.status_code == 201, resp.text
        net: dict[str, Any] = resp.json()["network"]
        return net

    def names(self, token: str) -> set[str]:
        resp = self.call("GET", "/v2.0/networks", token)
        assert resp.status_code == 200, resp.text
        return {n["name"] for n in resp.json()["networks"]}


def config(ks: Keystone, **over: Any) -> KeystoneConfig:
    settings: dict[str, Any] = {"url": ks.url, "username": "overcast",
                                "password": ks.password("overcast"), "project_name": "service",
                                "cache_ttl": TTL, "timeout": 120.0, **over}  # a loaded machine
    return KeystoneConfig(**settings)


@pytest.fixture(scope="module")
def overcast(keystone: Keystone) -> Iterator[Overcast]:
    """Overcast in keystone mode on the port the catalog names."""
    clock = Clock()
    auth = KeystoneAuth(config(keystone), clock)
    port = int(keystone.overcast_url.rsplit(":", 1)[1])
    with EmbeddedServer(Api(MemoryStore(), auth=Auth.from_source(auth)), port=port) as srv:
        yield Overcast(keystone, auth, srv.url, clock)


def assert_401(resp: httpx.Response, ks: Keystone) -> None:
    assert resp.status_code == 401, resp.text
    assert resp.json() == {"NeutronError": {
        "type": "NotAuthenticated", "detail": "",
        "message": "The request you have made requires authentication."}}
    assert resp.headers["www-authenticate"] == f'Keystone uri="{ks.url}"'


def test_a_members_token_is_accepted_and_names_its_project(overcast: Overcast,
                                                           keystone: Keystone) -> None:
    net = overcast.network(keystone.token("alice"), name="alice-net")
    assert net["project_id"] == net["tenant_id"] == keystone.projects["alpha"]
    assert "www-authenticate" not in overcast.call("GET", "/v2.0/networks",
                                                   keystone.token("alice")).headers


def test_no_token_and_a_wrong_token_are_401(overcast: Overcast, keystone: Keystone) -> None:
    assert_401(overcast.call("GET", "/v2.0/networks"), keystone)
    assert_401(overcast.call("GET", "/v2.0/networks", "not-a-token"), keystone)
    forged = keystone.token("alice")[:-8] + "AAAAAAAA"  # a fernet token that does not verify
    assert_401(overcast.call("POST", "/v2.0/networks", forged, {"network": {}}), keystone)
    assert_401(overcast.call("GET", "/v2.0/no-such-thing", "not-a-token"), keystone)  # before 404


def test_the_version_document_needs_no_token(overcast: Overcast) -> None:
    assert overcast.call("GET", "/").status_code == 200


def test_an_expired_token_is_401_even_when_it_was_cached(overcast: Overcast,
                                                         keystone: Keystone) -> None:
    """An application credential's tokens expire with it: a real expiry, seconds away
    (more of them if making it took that long: a loaded machine)."""
    alice = keystone.token("alice")
    me = keystone.call("GET", "/auth/tokens", alice, headers={"X-Subject-Token": alice})
    uid = me.json()["token"]["user"]["id"]
    for window in (15, 60, 180):
        ends = datetime.now(UTC) + timedelta(seconds=window)
        resp = keystone.call("POST", f"/users/{uid}/application_credentials", alice, json={
            "application_credential": {"name": f"short-{time.time()}",
                                       "expires_at": ends.strftime("%Y-%m-%dT%H:%M:%S.%f")}})
        assert resp.status_code == 201, resp.text
        cred = resp.json()["application_credential"]
        token = keystone.token_of({"methods": ["application_credential"],
                                   "application_credential": {"id": cred["id"],
                                                              "secret": cred["secret"]}},
                                  check=False)
        if token is None:  # the credential expired before its token was made
            continue
        resp = overcast.call("GET", "/v2.0/networks", token)
        if time.time() < ends.timestamp() - 0.5:  # answered well before it expired
            break
    assert token is not None and resp.status_code == 200, resp.text
    validations = overcast.auth.validations
    time.sleep(max(0.0, ends.timestamp() - time.time()) + 0.2)  # until it has expired
    # the cache entry ended with the token (well before TTL), and Keystone, asked again, agrees
    assert_401(overcast.call("GET", "/v2.0/networks", token), keystone)
    assert overcast.auth.validations == validations + 1


def test_a_revoked_token_is_accepted_until_its_cache_entry_ends(overcast: Overcast,
                                                                keystone: Keystone) -> None:
    token = keystone.token("alice")
    assert overcast.call("GET", "/v2.0/networks", token).status_code == 200
    keystone.revoke(token)
    assert overcast.call("GET", "/v2.0/networks", token).status_code == 200  # cached: TTL
    overcast.clock.ahead += TTL + 1
    try:
        assert_401(overcast.call("GET", "/v2.0/networks", token), keystone)
    finally:
        overcast.clock.ahead -= TTL + 1


def test_roles_member_reader_admin_and_another_project(overcast: Overcast,
                                                       keystone: Keystone) -> None:
    alice, rita, bob = (keystone.token(u) for u in ("alice", "rita", "bob"))
    admin = keystone.token("admin")
    net = overcast.network(alice, name="alpha-private")
    # another project's member sees nothing of it
    assert "alpha-private" not in overcast.names(bob)
    assert overcast.call("GET", f"/v2.0/networks/{net['id']}", bob).status_code == 404
    assert overcast.call("DELETE", f"/v2.0/networks/{net['id']}", bob).status_code == 404
    # the project's reader reads it, and may write nothing
    assert "alpha-private" in overcast.names(rita)
    assert overcast.call("GET", f"/v2.0/networks/{net['id']}", rita).status_code == 200
    for method, path, body in (("POST", "/v2.0/networks", {"network": {"name": "r"}}),
                               ("PUT", f"/v2.0/networks/{net['id']}", {"network": {"name": "r"}}),
                               ("DELETE", f"/v2.0/networks/{net['id']}", None)):
        resp = overcast.call(method, path, rita, body)
        assert resp.status_code == 403, (method, resp.text)
        assert resp.json()["NeutronError"]["type"] == "PolicyNotAuthorized"
    # a member is no admin: sharing a network is the operator's
    assert overcast.call("POST", "/v2.0/networks", alice,
                         {"network": {"shared": True}}).status_code == 403
    # the admin sees every project's, and makes objects for any project
    assert "alpha-private" in overcast.names(admin)
    made = overcast.network(admin, name="for-beta", project_id=keystone.projects["beta"],
                            shared=False)
    assert made["project_id"] == keystone.projects["beta"]
    assert "for-beta" in overcast.names(bob)
    assert overcast.call("GET", "/v2.0/networks/" + made["id"], alice).status_code == 404


def test_a_system_scoped_admin_token_is_refused_as_neutron_does(overcast: Overcast,
                                                                keystone: Keystone) -> None:
    resp = overcast.call("GET", "/v2.0/networks", keystone.token("admin", system=True))
    assert resp.status_code == 403, resp.text
    assert "System-scoped tokens are not accepted" in resp.json()["NeutronError"]["message"]


def test_cached_tokens_call_keystone_once(overcast: Overcast, keystone: Keystone) -> None:
    token = keystone.token("bob")
    for _ in range(20):
        assert overcast.call("GET", "/v2.0/networks", token).status_code == 200
    before = overcast.auth.validations
    for _ in range(20):
        assert overcast.call("GET", "/v2.0/networks", token).status_code == 200
    assert overcast.auth.validations == before


def test_a_cached_token_costs_little_next_to_no_auth(overcast: Overcast,
                                                    keystone: Keystone) -> None:
    """Side by side, interleaved: GET one network with a cached token against
    the same in no-auth mode; no call to Keystone meanwhile."""
    token = keystone.token("bob")
    mine = overcast.network(token, name="timed")["id"]
    with EmbeddedServer(Api(MemoryStore())) as plain:
        noauth = httpx.Client(base_url=plain.url, timeout=60)
        theirs = noauth.post("/v2.0/networks", json={"network": {"name": "timed"}}
                             ).json()["network"]["id"]
        overcast.call("GET", f"/v2.0/networks/{mine}", token)  # now cached
        before = overcast.auth.validations
        times: dict[str, list[float]] = {"keystone": [], "noauth": []}
        gets = {"keystone": (overcast.http, f"/v2.0/networks/{mine}", {"X-Auth-Token": token}),
                "noauth": (noauth, f"/v2.0/networks/{theirs}", {})}
        for n in range(300):  # the first of a pair pays for waking up: each goes first in turn
            for mode in ("keystone", "noauth") if n % 2 else ("noauth", "keystone"):
                http, path, headers = gets[mode]
                began = time.perf_counter()
                assert http.get(path, headers=headers).status_code == 200
                times[mode].append(time.perf_counter() - began)
    assert overcast.auth.validations == before
    for share, label in ((0.5, "median"), (0.1, "10th percentile")):
        ks, na = (sorted(times[m])[int(len(times[m]) * share)] * 1e6
                  for m in ("keystone", "noauth"))
        FIGURES.append(f"GET /v2.0/networks/ID over HTTP, {label} of 300 interleaved: keystone "
                       f"mode with a cached token {ks:.0f} us, no-auth {na:.0f} us "
                       f"({ks - na:+.0f} us)")


def test_keystone_unreachable_is_503(keystone: Keystone) -> None:
    gone = KeystoneAuth(config(keystone, url="http://127.0.0.1:1/v3", timeout=5))
    with EmbeddedServer(Api(MemoryStore(), auth=Auth.from_source(gone))) as srv:
        resp = httpx.get(f"{srv.url}/v2.0/networks", headers={"X-Auth-Token": "t"}, timeout=30)
    assert resp.status_code == 503, resp.text
    assert resp.json()["NeutronError"]["message"] == (
        "The Keystone service is temporarily unavailable.")


def openstack(ks: Keystone, user: str, tmp: Path, *args: str) -> Any:
    """The unmodified ``openstack`` CLI with password auth as ``user``;
    the network endpoint comes from Keystone's catalog."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(HOME=str(tmp), OS_AUTH_URL=ks.url, OS_IDENTITY_API_VERSION="3",
               OS_USERNAME=user, OS_PASSWORD=ks.password(user), OS_USER_DOMAIN_NAME="Default",
               OS_PROJECT_NAME={"alice": "alpha", "bob": "beta", "admin": "admin"}[user],
               OS_PROJECT_DOMAIN_NAME="Default", OS_REGION_NAME="RegionOne")
    p = subprocess.run([str(OPENSTACK), *args, "-f", "json"], env=env, capture_output=True,
                       text=True, timeout=180, cwd=tmp)
    assert p.returncode == 0, f"openstack {' '.join(args)}: {p.stderr}"
    return json.loads(p.stdout)


def test_the_openstack_cli_with_password_auth(overcast: Overcast, keystone: Keystone,
                                             tmp_path: Path) -> None:
    made = openstack(keystone, "alice", tmp_path, "network", "create", "cli-alpha")
    assert made["project_id"] == keystone.projects["alpha"]
    assert "cli-alpha" in {n["Name"] for n in openstack(keystone, "alice", tmp_path,
                                                        "network", "list")}
    assert "cli-alpha" not in {n["Name"] for n in openstack(keystone, "bob", tmp_path,
                                                            "network", "list")}
    admin_made = openstack(keystone, "admin", tmp_path, "network", "create", "--project",
                           keystone.projects["beta"], "cli-admin-for-beta")
    assert admin_made["project_id"] == keystone.projects["beta"]
    every = {n["Name"] for n in openstack(keystone, "admin", tmp_path, "network", "list")}
    assert {"cli-alpha", "cli-admin-for-beta"} <= every
