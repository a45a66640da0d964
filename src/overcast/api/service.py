"""The API's request handling, independent of the HTTP framework:
``Api.handle(Request) -> Response``.  Reads use one store snapshot; every
change is one store transaction (all or nothing, bulk creates included)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from overcast.api import meta, query, subresources
from overcast.api.auth import Auth, Context
from overcast.api.config import ApiConfig
from overcast.api.errors import (
    ApiError,
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PreconditionFailed,
    TooLarge,
    from_model_error,
)
from overcast.api.registry import COLLECTION_PATHS, HANDLERS, Handlers
from overcast.api.repo import DecodeCache, Repo, Snapshot, build_indexes
from overcast.model import keys
from overcast.model.problems import ModelError
from overcast.store import StmTxn, Store, transact

T = TypeVar("T")


@dataclass
class Request:
    method: str
    path: str
    params: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    base_url: str = "http://127.0.0.1:9696"


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-able, or None for an empty body


_OBJ = "\0obj"  # the object behind a cheap partial rendering in a listing
_MEMBER = re.compile(r"^/v2\.0/(?P<coll>[a-z-]+(?:/policies)?)(?:/(?P<id>[^/]+)(?P<rest>/.*)?)?$")


class Api:
    def __init__(self, store: Store, cfg: ApiConfig | None = None,
                 auth: Auth | None = None) -> None:
        self.store = store
        self.cfg = cfg or ApiConfig()
        self.auth = auth or Auth.noauth()
        self._write_lock = threading.Lock()
        self._decoded = DecodeCache()
        transact(store, _ensure_indexes)

    # entry ----------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        try:
            return self._route(req)
        except ModelError as err:
            return _error(from_model_error(err))
        except ApiError as err:
            return _error(err)

    def _route(self, req: Request) -> Response:
        path = req.path.rstrip("/") or "/"
        if path.endswith(".json") and path.startswith("/v2.0/"):
            path = path[: -len(".json")]
        if path in ("/", "/v2.0") and req.method == "GET":
            return Response(200, meta.versions(req.base_url) if path == "/"
                            else meta.resources(req.base_url))
        ctx = self.auth.context(req.headers.get("x-auth-token"))
        special = meta.route(self, ctx, req, path)
        if special is not None:
            return special
        m = _MEMBER.match(path)
        if m is None or m["coll"] not in COLLECTION_PATHS:
            raise NotFound(f"The resource could not be found: {req.path}", type="HTTPNotFound")
        handlers = HANDLERS[COLLECTION_PATHS[m["coll"]]]
        if m["rest"]:
            return subresources.route(self, ctx, req, handlers, m["id"], m["rest"])
        if m["id"] is None:
            return self._collection(ctx, req, handlers)
        return self._member(ctx, req, handlers, m["id"])

    # helpers used by the route modules --------------------------------------
    def read(self, bulk: bool = False) -> Repo:
        return Repo(Snapshot(self.store), self.cfg, self._decoded, bulk)

    def write(self, fn: Callable[[Repo], T]) -> T:
        with self._write_lock:
            return transact(self.store, lambda tx: fn(Repo(tx, self.cfg, self._decoded)))

    def body(self, req: Request) -> Any:
        if len(req.body) > self.cfg.max_body_bytes:
            raise TooLarge(f"Request body of {len(req.body)} bytes exceeds the limit of "
                           f"{self.cfg.max_body_bytes} bytes")
        try:
            return json.loads(req.body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("Malformed request body: not valid JSON") from None

    # collections and members -------------------------------------------------
    def _collection(self, ctx: Context, req: Request, h: Handlers) -> Response:
        if req.method == "GET":
            return Response(200, self.list(ctx, req, h, self.read(bulk=True), None))
        if req.method == "POST" and h.create is not None:
            return self._create(ctx, req, h)
        raise MethodNotAllowed(f"{req.method} is not allowed on {req.path}")

    def list(self, ctx: Context, req: Request, h: Handlers, repo: Repo,
             parent: tuple[str, str] | None) -> dict[str, Any]:
        kind = h.kind
        q = query.parse(kind, req.params, meta.extra_attrs(kind))
        visible = kind.visible(ctx, repo)
        objs = [o for o in repo.all(kind.cls) if visible(o)
                and (parent is None or getattr(o, parent[0]) == parent[1])]
        if kind.member == "security_group":
            objs = meta.with_default_group(self, ctx, objs)
            repo = self.read(bulk=True)
        needed = {"id", *q.filters, *(k for k, _ in q.sort), *(["tags"] if q.tags else [])}
        view = kind.stored_view(ctx, needed)
        if view is not None:  # filter, sort and cut on stored values; render one page
            cheap = [{**view(o), _OBJ: o} for o in objs]
            cut, has_next, has_prev = query.page(q, [i for i in cheap if query.matches(q, i)])
            page = [kind.render_for(ctx, repo, i[_OBJ]) for i in cut]
        else:
            items = [kind.render_for(ctx, repo, o) for o in objs]
            page, has_next, has_prev = query.page(q, [i for i in items if query.matches(q, i)])
        out: dict[str, Any] = {kind.collection: [query.select(q, i) for i in page]}
        base = req.base_url.rstrip("/") + req.path
        out.update(query.links(base, kind.collection, q, page, has_next, has_prev, req.params))
        return out

    def _create(self, ctx: Context, req: Request, h: Handlers) -> Response:
        body = self.body(req)
        kind = h.kind
        if isinstance(body, dict) and kind.collection in body and kind.member not in body:
            items = body[kind.collection]
            if not isinstance(items, list) or not items:
                raise BadRequest(f"Bulk create needs a non-empty list in '{kind.collection}'")
            parsed = [h.parse_body(ctx, item, True) for item in items]
            assert h.create is not None
            create = h.create

            def bulk(repo: Repo) -> list[dict[str, Any]]:
                made = [create(repo, ctx, self.cfg, dict(f)) for f in parsed]
                return [kind.render_for(ctx, repo, o) for o in made]
            return Response(201, {kind.collection: self.write(bulk)})
        one = self.unwrap(body, kind.member)
        fields = h.parse_body(ctx, one, True)
        assert h.create is not None
        create1 = h.create
        made = self.write(lambda repo: kind.render_for(ctx, repo,
                                                       create1(repo, ctx, self.cfg, fields)))
        return Response(201, {kind.member: made})

    @staticmethod
    def unwrap(body: Any, member: str) -> Any:
        if not isinstance(body, dict) or member not in body or len(body) != 1:
            raise BadRequest(f"Resource body required: expected {{\"{member}\": {{...}}}}")
        return body[member]

    def _member(self, ctx: Context, req: Request, h: Handlers, id_: str) -> Response:
        kind = h.kind
        if req.method == "GET":
            repo = self.read()
            obj = repo.must(kind.cls, id_, kind.visible(ctx, repo))
            q = query.parse(kind, [(k, v) for k, v in req.params if k == "fields"], set())
            return Response(200, {kind.member: query.select(q, kind.render_for(ctx, repo, obj))})
        if req.method == "PUT" and h.update is not None:
            fields = h.parse_body(ctx, self.unwrap(self.body(req), kind.member), False)
            update = h.update

            def change(repo: Repo) -> dict[str, Any]:
                obj = repo.must(kind.cls, id_, kind.visible(ctx, repo))
                check_revision(req, kind.member, obj)
                return kind.render_for(ctx, repo, update(repo, ctx, self.cfg, obj, dict(fields)))
            return Response(200, {kind.member: self.write(change)})
        if req.method == "DELETE" and h.delete is not None:
            delete = h.delete

            def remove(repo: Repo) -> None:
                obj = repo.must(kind.cls, id_, kind.visible(ctx, repo))
                check_revision(req, kind.member, obj)
                delete(repo, ctx, obj)
            self.write(remove)
            return Response(204)
        raise MethodNotAllowed(f"{req.method} is not allowed on {req.path}")


def check_revision(req: Request, member: str, obj: Any) -> None:
    """``If-Match: revision_number=N`` must name the current revision (else 412)."""
    header = req.headers.get("if-match")
    if not header:
        return
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name != "revision_number":
            continue
        if not value.isdigit() or int(value) != obj.revision_number:
            raise PreconditionFailed(f"Constrained by {part.strip()} failed for {member} "
                                     f"{obj.id}, current revision is {obj.revision_number}.")


def _error(err: ApiError) -> Response:
    return Response(err.status, err.body())


def _ensure_indexes(tx: StmTxn) -> int:
    """Build the secondary indexes once for a store that lacks them."""
    if tx.get(keys.INDEX_META) == keys.INDEX_VERSION.encode():
        return 0
    return build_indexes(tx)
