"""Who is calling: no-auth mode (one lab user, admin), tokens from a config file,
or tokens a remote source validates (Keystone: ``api/keystone.py``).

Token file (YAML)::

    tokens:
      s3cret-admin: {project_id: ops, role: admin}
      s3cret-alice: {project_id: alice, role: member}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from overcast.api.errors import NotAuthenticated

NOAUTH_PROJECT = "lab"
ROLES = ("admin", "member")


class AuthFileError(ValueError):
    """A token file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class Context:
    """Who calls: a project, whether it is an admin, and whether it may only
    read (Keystone's reader role).  What it may do is ``policy``'s to say."""

    project_id: str
    is_admin: bool
    read_only: bool = False


class TokenSource(Protocol):
    """Tokens validated elsewhere (Keystone): the context of a token, and
    whether that needs no remote call (the HTTP edge answers those on its loop)."""

    @property
    def www_authenticate(self) -> str: ...  # the WWW-Authenticate header of a 401

    def context(self, token: str | None) -> Context: ...

    def cached(self, token: str | None) -> bool: ...


@dataclass(frozen=True, slots=True)
class Auth:
    tokens: dict[str, Context] | None  # None: no-auth mode (unless remote)
    remote: TokenSource | None = None  # keystone mode

    @classmethod
    def noauth(cls) -> Auth:
        return cls(None)

    @classmethod
    def from_source(cls, source: TokenSource) -> Auth:
        return cls(None, source)

    @classmethod
    def from_file(cls, path: str | Path) -> Auth:
        """The tokens of a token file; ``AuthFileError`` naming the file and
        what is wrong with it if it cannot be read or has the wrong shape."""
        return cls(_tokens(path, _load(path)))

    def needs_lookup(self, token: str | None) -> bool:
        """Whether knowing who sends ``token`` takes a remote call."""
        return self.remote is not None and not self.remote.cached(token)

    def challenge(self, status: int) -> str | None:
        """The WWW-Authenticate header of an answer, if it has one (a 401 in
        keystone mode, as keystonemiddleware sends it)."""
        return self.remote.www_authenticate if status == 401 and self.remote else None

    def context(self, token: str | None) -> Context:
        if self.remote is not None:
            return self.remote.context(token)
        if self.tokens is None:
            return Context(NOAUTH_PROJECT, True)
        if not token:
            raise NotAuthenticated("Authentication required: send a token in X-Auth-Token")
        ctx = self.tokens.get(token)
        if ctx is None:
            raise NotAuthenticated("The token in X-Auth-Token is not valid")
        return ctx


def _load(path: str | Path) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AuthFileError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise AuthFileError(f"{path}: not a text file (not UTF-8)") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise AuthFileError(f"{path}: not valid YAML{at}") from None


def _tokens(path: str | Path, data: Any) -> dict[str, Context]:
    raw = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(raw, dict) or not raw:
        raise AuthFileError(f"{path}: expected a mapping with a non-empty 'tokens' mapping "
                            "(tokens: {TOKEN: {project_id: P, role: admin|member}})")
    tokens: dict[str, Context] = {}
    for n, (token, entry) in enumerate(raw.items(), 1):
        label = f"{path}: token entry {n}"  # never the token itself: it is a secret
        if not isinstance(token, str) or not token:
            raise AuthFileError(f"{label}: the token must be a non-empty string "
                                "(quote it in YAML)")
        if not isinstance(entry, dict):
            raise AuthFileError(f"{label}: expected a mapping {{project_id: P, role: "
                                f"admin|member}}, not {type(entry).__name__}")
        role, project = entry.get("role", "member"), entry.get("project_id")
        if role not in ROLES:
            raise AuthFileError(f"{label}: role must be admin or member, not {role!r}")
        if not isinstance(project, str | int) or isinstance(project, bool) or not str(project):
            raise AuthFileError(f"{label}: needs a project_id (a string)")
        tokens[token] = Context(str(project), role == "admin")
    return tokens
