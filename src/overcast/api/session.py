"""What a route's handler is given: the store as one read snapshot or one
transaction (``Session``), and the call itself — who calls, the request and
the parameters its path matched (``Call``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from overcast.api.auth import Context
from overcast.api.config import ApiConfig
from overcast.api.repo import DecodeCache, Repo, Snapshot
from overcast.api.seams import Seams
from overcast.api.wire import Request, decode_body, unwrap
from overcast.store import Store, transact

T = TypeVar("T")


class Session:
    """Reads use one store snapshot; every change is one store transaction (all
    or nothing), one at a time in this process."""

    def __init__(self, store: Store, cfg: ApiConfig, seams: Seams) -> None:
        self.store = store
        self.cfg = cfg
        self.seams = seams
        self._write_lock = threading.Lock()
        self._decoded = DecodeCache()

    def read(self, bulk: bool = False) -> Repo:
        return Repo(Snapshot(self.store), self.cfg, self._decoded, bulk, self.seams)

    def write(self, fn: Callable[[Repo], T]) -> T:
        with self._write_lock:
            return transact(self.store,
                            lambda tx: fn(Repo(tx, self.cfg, self._decoded, seams=self.seams)))


@dataclass(frozen=True)
class Call:
    ctx: Context
    req: Request
    params: dict[str, str]  # what the route's path pattern matched, e.g. {"id": ...}
    session: Session

    def body(self) -> Any:
        return decode_body(self.req.body, self.session.cfg.max_body_bytes)

    def member_body(self, member: str) -> Any:
        """The one object of a ``{"<member>": {...}}`` body."""
        return unwrap(self.body(), member)

    def read(self, bulk: bool = False) -> Repo:
        return self.session.read(bulk)

    def write(self, fn: Callable[[Repo], T]) -> T:
        return self.session.write(fn)
