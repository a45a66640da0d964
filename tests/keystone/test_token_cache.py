"""The keystone mode's pieces that need no Keystone: the token cache, how a
validated token maps to a context, and ``overcast server``'s options."""

from __future__ import annotations

from pathlib import Path

import pytest

from overcast.api.auth import Context
from overcast.api.keystone import TokenCache, decide
from overcast.api.server import parse_args, settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_lasts_until_the_token_expires_or_the_ttl_whichever_is_first() -> None:
    clock = Clock()
    cache = TokenCache(ttl=60, size=10, clock=clock)
    ctx = Context("p", False)
    cache.put("long", ctx, expires_at=clock.now + 3600)
    cache.put("short", ctx, expires_at=clock.now + 5)
    clock.now += 5
    assert cache.get("short") is None and cache.get("long") == ctx
    clock.now += 55
    assert cache.get("long") is None


def test_the_cache_is_bounded_and_drops_the_least_recently_used() -> None:
    cache = TokenCache(ttl=60, size=2, clock=Clock())
    for token in ("a", "b"):
        cache.put(token, Context(token, False), expires_at=10_000)
    assert cache.get("a") is not None  # now b is the least recently used
    cache.put("c", Context("c", False), expires_at=10_000)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (
        Context("a", False), None, Context("c", False))
    assert len(cache) == 2


def test_the_cache_keeps_no_token_and_ttl_0_keeps_nothing() -> None:
    cache = TokenCache(ttl=60, size=2, clock=Clock())
    cache.put("s3cret-token", Context("p", False), expires_at=10_000)
    assert "s3cret-token" not in repr(cache._entries)
    none = TokenCache(ttl=0, size=2, clock=Clock())
    none.put("t", Context("p", False), expires_at=10_000)
    assert none.get("t") is None


def project_token(*roles: str) -> dict[str, object]:
    return {"project": {"id": "p1"}, "roles": [{"name": r} for r in roles]}


def test_roles_map_as_neutron_reads_them() -> None:
    assert decide(project_token("admin", "member", "reader")) == Context("p1", True)
    assert decide(project_token("member", "reader")) == Context("p1", False)
    assert decide(project_token("reader")) == Context("p1", False, read_only=True)
    assert "none of the roles" in str(decide(project_token("_member_")))
    assert "System-scoped" in str(decide({"system": {"all": True},
                                          "roles": [{"name": "admin"}]}))
    assert "not scoped to a project" in str(decide({"roles": [{"name": "admin"}],
                                                    "domain": {"id": "default"}}))


def test_keystone_mode_names_every_missing_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OVERCAST_KEYSTONE_PASSWORD", raising=False)
    with pytest.raises(SystemExit) as err:
        settings(parse_args(["--auth", "keystone", "--keystone-url", "http://ks:5000"]))
    assert "username is missing; password is missing; project_name is missing" in str(err.value)


def test_keystone_mode_reads_its_file_and_the_options_win(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "ks.yaml"
    conf.write_text("keystone:\n  url: http://ks:5000\n  username: overcast\n"
                    "  project_name: service\n  cache_ttl: 20\n")
    monkeypatch.setenv("OVERCAST_KEYSTONE_PASSWORD", "pw")
    _, auth, host, _, _ = settings(parse_args(["--auth", "keystone", "--keystone-config",
                                               str(conf), "--token-cache-time", "5",
                                               "--bind", "0.0.0.0:9696"]))
    remote = auth.remote
    assert remote is not None and host == "0.0.0.0"  # an authenticated mode: any address
    assert remote.www_authenticate == 'Keystone uri="http://ks:5000"'
    cfg = remote.cfg  # type: ignore[attr-defined]
    assert (cfg.v3, cfg.password, cfg.cache_ttl) == ("http://ks:5000/v3", "pw", 5.0)


def test_keystone_mode_refuses_a_bad_file(tmp_path: Path) -> None:
    conf = tmp_path / "ks.yaml"
    conf.write_text("keystone:\n  url: ks\n  usernme: x\n")
    with pytest.raises(SystemExit) as err:
        settings(parse_args(["--auth", "keystone", "--keystone-config", str(conf)]))
    assert "unknown keystone settings usernme" in str(err.value)
    conf.write_text("keystone:\n  url: ks\n  username: o\n  password: p\n  project_name: s\n"
                    "  cache_ttl: soon\n")
    with pytest.raises(SystemExit) as err:
        settings(parse_args(["--auth", "keystone", "--keystone-config", str(conf)]))
    assert "cache_ttl must be a number, not 'soon'" in str(err.value)
    conf.write_text("keystone:\n  url: ks\n  username: o\n  password: p\n  project_name: s\n")
    with pytest.raises(SystemExit) as err:
        settings(parse_args(["--auth", "keystone", "--keystone-config", str(conf)]))
    assert "url must be http:// or https://, not 'ks'" in str(err.value)


def test_auth_config_belongs_to_token_mode() -> None:
    with pytest.raises(SystemExit) as err:
        settings(parse_args(["--auth", "keystone", "--auth-config", "x.yaml"]))
    assert "--auth-config is for --auth token, not keystone" in str(err.value)
