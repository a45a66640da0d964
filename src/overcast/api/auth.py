"""Who is calling: no-auth mode (one lab user, admin) or tokens from a config file.

Token file (YAML)::

    tokens:
      s3cret-admin: {project_id: ops, role: admin}
      s3cret-alice: {project_id: alice, role: member}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from overcast.api.errors import NotAuthenticated

NOAUTH_PROJECT = "lab"


@dataclass(frozen=True, slots=True)
class Context:
    project_id: str
    is_admin: bool

    def may_see(self, owner: str, shared: bool = False) -> bool:
        return self.is_admin or shared or owner == self.project_id

    def owns(self, owner: str) -> bool:
        return self.is_admin or owner == self.project_id


@dataclass(frozen=True, slots=True)
class Auth:
    tokens: dict[str, Context] | None  # None: no-auth mode

    @classmethod
    def noauth(cls) -> Auth:
        return cls(None)

    @classmethod
    def from_file(cls, path: str | Path) -> Auth:
        data = yaml.safe_load(Path(path).read_text()) or {}
        raw = data.get("tokens")
        if not isinstance(raw, dict) or not raw:
            raise ValueError(f"{path}: expected a non-empty 'tokens' mapping")
        tokens: dict[str, Context] = {}
        for token, entry in raw.items():
            role = entry.get("role", "member")
            if role not in ("admin", "member") or not entry.get("project_id"):
                raise ValueError(f"{path}: token entry {token[:4]}...: need project_id and "
                                 "role admin|member")
            tokens[str(token)] = Context(str(entry["project_id"]), role == "admin")
        return cls(tokens)

    def context(self, token: str | None) -> Context:
        if self.tokens is None:
            return Context(NOAUTH_PROJECT, True)
        if not token:
            raise NotAuthenticated("Authentication required: send a token in X-Auth-Token")
        ctx = self.tokens.get(token)
        if ctx is None:
            raise NotAuthenticated("The token in X-Auth-Token is not valid")
        return ctx
