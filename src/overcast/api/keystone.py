"""Keystone authentication (``overcast server --auth keystone``): each
request's ``X-Auth-Token`` is validated against Keystone v3 the way
keystonemiddleware's ``auth_token`` does it — ``GET /v3/auth/tokens`` with
the token in ``X-Subject-Token``, authenticated by a service user's own token
— and the answer is cached (bounded, keyed by the token's SHA-256, until the
token expires or ``cache_ttl`` passes, whichever comes first).

Roles map onto ``Context`` as Neutron's default policies read them (its new
defaults, with scope enforced): ``admin`` is the cloud's admin; ``member`` may
read and write its project's objects; ``reader`` only read them (every write
403).  A system-scoped token is refused (403) as Neutron refuses it: none of
its APIs is system-scoped.  A token with none of the three roles, or scoped
to no project (unscoped, domain-scoped), is refused (403) too.

A revoked token stays accepted until its cache entry ends (``cache_ttl``,
300 s by default, keystonemiddleware's ``token_cache_time``); Keystone
itself is asked again only then.  Configuration: ``docs/keystone.md``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from overcast.api.auth import AuthFileError, Context
from overcast.api.errors import Forbidden, NotAuthenticated, Unavailable

if TYPE_CHECKING:
    from keystoneauth1.session import Session

log = logging.getLogger("overcast.api.keystone")

REQUIRES_AUTH = "The request you have made requires authentication."  # keystonemiddleware's
UNAVAILABLE = "The Keystone service is temporarily unavailable."  # keystonemiddleware's
SETTINGS = ("url", "username", "password", "project_name", "user_domain_name",
            "project_domain_name", "cache_ttl", "cache_size", "timeout", "www_authenticate_uri")
Clock = Callable[[], float]
Decision = Context | str  # a context, or why the token is refused (403)


@dataclass(frozen=True, slots=True)
class KeystoneConfig:
    """Where Keystone is and who Overcast is there (a service user with the
    ``service`` or ``admin`` role, which Keystone asks of a validator)."""

    url: str
    username: str
    password: str
    project_name: str
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    cache_ttl: float = 300.0  # s; 0: no cache
    cache_size: int = 10_000  # tokens
    timeout: float = 10.0  # s, each call to Keystone
    www_authenticate_uri: str = ""  # what a 401 points clients to (default: url)

    @property
    def v3(self) -> str:
        base = self.url.rstrip("/")
        return base if base.endswith("/v3") else f"{base}/v3"

    def problems(self) -> list[str]:
        out = []
        if not self.url.startswith(("http://", "https://")):
            out.append(f"url must be http:// or https://, not {self.url!r}")
        if self.cache_ttl < 0:
            out.append(f"cache_ttl must be >= 0, not {self.cache_ttl}")
        if self.cache_size < 1:
            out.append(f"cache_size must be > 0, not {self.cache_size}")
        if not self.timeout > 0:
            out.append(f"timeout must be > 0, not {self.timeout}")
        return out


REQUIRED = ("url", "username", "password", "project_name")
NUMBERS = {"cache_ttl": float, "cache_size": int, "timeout": float}


def make_config(given: Mapping[str, Any]) -> KeystoneConfig:
    """A ``KeystoneConfig`` of these settings (None: unset); ``ValueError``
    naming every setting that is missing or wrong."""
    settings = {k: v for k, v in given.items() if v is not None}
    problems = [f"{name} is missing" for name in REQUIRED if not settings.get(name)]
    for name, value in settings.items():
        kind = NUMBERS.get(name, str)
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float
                                                     else kind):
            problems.append(f"{name} must be a {'number' if kind is not str else 'string'}, "
                            f"not {value!r}")
    if problems:
        raise ValueError("; ".join(problems))
    cfg = KeystoneConfig(**settings)
    if cfg.problems():
        raise ValueError("; ".join(cfg.problems()))
    return cfg


def read_config(path: str | Path) -> dict[str, Any]:
    """The ``keystone:`` mapping of a YAML file (``AuthFileError`` naming the
    file and what is wrong)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise AuthFileError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, yaml.YAMLError):
        raise AuthFileError(f"{path}: not a YAML text file") from None
    section = data.get("keystone") if isinstance(data, dict) else None
    if not isinstance(section, dict):
        raise AuthFileError(f"{path}: expected a mapping with a 'keystone' mapping "
                            "(keystone: {url: U, username: N, password: P, project_name: S})")
    unknown = sorted(str(k) for k in section if k not in SETTINGS)
    if unknown:
        raise AuthFileError(f"{path}: unknown keystone settings {', '.join(unknown)} "
                            f"(known: {', '.join(SETTINGS)})")
    return dict(section)


class TokenCache:
    """Validated tokens by the SHA-256 of the token (never the token itself),
    each until its deadline; at most ``size``, the least recently used go first."""

    def __init__(self, ttl: float, size: int, clock: Clock = time.time) -> None:
        self.ttl, self.size, self.clock = ttl, size, clock
        self._entries: OrderedDict[bytes, tuple[Decision, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str) -> Decision | None:
        key = _key(token)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self.clock() >= entry[1]:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, token: str, decision: Decision, expires_at: float) -> None:
        deadline = min(expires_at, self.clock() + self.ttl)
        if self.ttl <= 0 or deadline <= self.clock():
            return
        with self._lock:
            self._entries[_key(token)] = (decision, deadline)
            self._entries.move_to_end(_key(token))
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def _key(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


class KeystoneAuth:
    """The token source of ``Auth`` in keystone mode: a context per token,
    from the cache or from Keystone (one call, on the calling thread)."""

    def __init__(self, cfg: KeystoneConfig, clock: Clock = time.time) -> None:
        self.cfg, self.clock = cfg, clock
        self.cache = TokenCache(cfg.cache_ttl, cfg.cache_size, clock)
        self.www_authenticate = f'Keystone uri="{cfg.www_authenticate_uri or cfg.url}"'
        self._session: Session | None = None  # made in the process that uses it (workers fork)
        self._lock = threading.Lock()
        self.validations = 0  # calls to Keystone (for tests and measurements)

    def cached(self, token: str | None) -> bool:
        """Whether answering ``token`` needs no call to Keystone."""
        return not token or self.cache.get(token) is not None

    def context(self, token: str | None) -> Context:
        if not token:
            raise NotAuthenticated(REQUIRES_AUTH)
        decision = self.cache.get(token)
        if decision is None:
            decision, expires_at = self._validate(token)
            self.cache.put(token, decision, expires_at)
        if isinstance(decision, str):
            raise Forbidden(decision)
        return decision

    def _validate(self, token: str) -> tuple[Decision, float]:
        body = self._fetch(token)
        expires_at = _timestamp(body.get("expires_at"))
        if expires_at is None or expires_at <= self.clock():
            raise NotAuthenticated(REQUIRES_AUTH)  # as keystonemiddleware: expired is invalid
        return decide(body), expires_at

    def _fetch(self, token: str) -> Mapping[str, Any]:
        """The ``token`` of Keystone's answer: 401 if Keystone does not know it
        (invalid, expired, revoked), 503 if Keystone cannot say."""
        from keystoneauth1 import exceptions as ksa

        self.validations += 1
        try:
            resp = self.session().get(f"{self.cfg.v3}/auth/tokens?nocatalog",
                                      headers={"X-Subject-Token": token}, authenticated=True,
                                      raise_exc=False, timeout=self.cfg.timeout)
        except ksa.ClientException as exc:  # unreachable, timed out, the service user refused
            log.error("cannot validate a token with Keystone at %s: %s", self.cfg.url, exc)
            raise Unavailable(UNAVAILABLE) from None
        if resp.status_code == 404:
            raise NotAuthenticated(REQUIRES_AUTH)
        body = _json(resp) if resp.status_code == 200 else None
        if not isinstance(body, dict) or not isinstance(body.get("token"), dict):
            log.error("Keystone at %s answered a token validation with %d", self.cfg.url,
                      resp.status_code)
            raise Unavailable(UNAVAILABLE)
        token_body: Mapping[str, Any] = body["token"]
        return token_body

    def session(self) -> Session:
        with self._lock:
            if self._session is None:
                self._session = _session(self.cfg)
            return self._session


def _session(cfg: KeystoneConfig) -> Session:
    from keystoneauth1.identity import v3
    from keystoneauth1.session import Session

    plugin = v3.Password(auth_url=cfg.v3, username=cfg.username, password=cfg.password,
                         project_name=cfg.project_name, user_domain_name=cfg.user_domain_name,
                         project_domain_name=cfg.project_domain_name)
    return Session(auth=plugin, timeout=cfg.timeout)


def _json(resp: Any) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def decide(token: Mapping[str, Any]) -> Decision:
    """The caller a validated token stands for, as Neutron's policies see it,
    or why it may do nothing here."""
    roles = {str(r.get("name", "")).lower() for r in token.get("roles") or []
             if isinstance(r, dict)}
    if token.get("system"):
        return ("System-scoped tokens are not accepted: every Networking API is "
                "project-scoped; use a token scoped to a project")
    project = token.get("project")
    if not isinstance(project, dict) or not project.get("id"):
        return "The token is not scoped to a project; use a project-scoped token"
    if not roles & {"admin", "member", "reader"}:
        return ("The token has none of the roles admin, member or reader in project "
                f"{project['id']}")
    admin = "admin" in roles
    return Context(str(project["id"]), admin, read_only=not admin and "member" not in roles)
