"""What the HTTP edge does with one request, whatever server parsed it
(``Edge``), and a Starlette app on it for any ASGI server (``create_app``).
``overcast server`` and ``EmbeddedServer`` run ``http_server``, which keeps
the connection limits of ``http_limits`` and calls ``Edge`` directly.

Requests run on the event loop's thread: most are short (a few store reads
and one transaction) and CPU-bound, so a thread hop would only add GIL
hand-offs (measured: a third less throughput, twice the p99).  Those that may
take long enough to stall this process's other connections run in a worker
thread (``Edge.slow``): every bulk create and every POST/PUT body above
``EdgeLimits.threaded_body_bytes``, and the routes flagged ``slow`` in
``routes.ROUTES`` (listings, deletes that scan every port), and in keystone
mode every request whose token is not in the token cache (its validation is
a call to Keystone).  A write waiting
for the store's writer gate blocks this process for at most the store's busy
timeout.

Methods: HEAD is answered as GET without the body; methods no route can
have (OPTIONS, TRACE, CONNECT, ...) are 405 in the Neutron error shape."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect
from starlette.requests import Request as HttpRequest
from starlette.responses import Response as HttpResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from overcast.api.errors import MethodNotAllowed, TooLarge, Unavailable
from overcast.api.http_limits import EdgeLimits
from overcast.api.http_response import Reply, encode, error_reply
from overcast.api.routes import ROUTES
from overcast.api.service import Api
from overcast.api.wire import Request, Response

log = logging.getLogger("overcast.api")
API_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"})
THREADED_BODY = EdgeLimits().threaded_body_bytes
_BULK = re.compile(rb'\s*\{\s*"[^"]*"\s*:\s*\[')  # {"networks": [ ... : a bulk create
INTERNAL_ERROR: Reply = (500, encode(Response(500, {"NeutronError": {
    "type": "HTTPInternalServerError",
    "message": "Request failed: internal server error while processing your request.",
    "detail": ""}})))
POOL_FULL = error_reply(Unavailable(
    "Too many slow requests are waiting in this API worker; try again later"))


class Edge:
    """Answers parsed requests: the method rules, the thread decision and the
    500 for a bug, around ``Api.handle``; runs the slow ones in a pool that
    holds at most ``EdgeLimits.pool_backlog`` of them."""

    def __init__(self, api: Api, limits: EdgeLimits | None = None) -> None:
        self.api = api
        self.limits = limits or EdgeLimits()
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False
        self._lock = threading.Lock()
        self.jobs = 0  # in the pool, running or waiting

    def slow(self, req: Request) -> bool:
        method = "GET" if req.method == "HEAD" else req.method
        return (_slow(method, req.path, len(req.body), req.body, self.limits.threaded_body_bytes)
                or self.api.auth.needs_lookup(req.headers.get("x-auth-token")))

    def answer(self, req: Request) -> Reply:
        """The answer as sent, computed (and encoded) on the calling thread."""
        if req.method not in API_METHODS:
            return error_reply(MethodNotAllowed(f"{req.method} is not allowed on {req.path}"))
        if req.method == "HEAD":
            req = replace(req, method="GET")
        try:
            resp = self.api.handle(req)
            return resp.status, encode(resp)
        except Exception:  # a bug: answer 500 in the Neutron shape, log the traceback
            log.exception("internal error on %s %s", req.method, req.path)
            return INTERNAL_ERROR

    def submit(self, req: Request) -> Future[Reply] | None:
        """``answer`` in the pool; None if the pool holds its backlog already.
        A job cancelled before it starts never runs.  RuntimeError once closed."""
        with self._lock:
            if self.jobs >= self.limits.pool_backlog():
                return None
            self.jobs += 1
        try:
            job = self.pool.submit(self.answer, req)
        except BaseException:
            self._job_done(None)
            raise
        job.add_done_callback(self._job_done)
        return job

    def _job_done(self, _job: Future[Reply] | None) -> None:
        with self._lock:
            self.jobs -= 1

    async def answer_async(self, req: Request) -> Reply:
        """The answer, computed in the pool if the request may be slow."""
        if not self.slow(req):
            return self.answer(req)
        job = self.submit(req)
        return POOL_FULL if job is None else await asyncio.wrap_future(job)

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._closed:
            raise RuntimeError("the edge is closed")
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.limits.threads, thread_name_prefix="overcast-api")
        return self._pool

    def close(self) -> None:
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _slow(method: str, path: str, body_size: int, body: bytes = b"",
          threaded_body: int = THREADED_BODY) -> bool:
    """Requests that may take long enough to stall this process's other
    connections: bulk creates and other large bodies, and the routes marked
    slow (listings, deletes that look at every port: a security group or QoS
    policy still in use)."""
    if method in ("POST", "PUT") and (body_size > threaded_body or _BULK.match(body)):
        return True
    return ROUTES.is_slow(method, path)


# the ASGI app -------------------------------------------------------------------
def create_app(api: Api, limits: EdgeLimits | None = None) -> Starlette:
    """The edge as an ASGI app, every method and path to ``Edge``."""
    return Starlette(routes=[Route("/{path:path}", _Endpoint(Edge(api, limits)))])


class _Endpoint:
    """An ASGI app (not a function), so that Starlette routes every method to it."""

    def __init__(self, edge: Edge) -> None:
        self.edge = edge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        http = HttpRequest(scope, receive)
        response = await self.respond(http)
        await response(scope, receive, send)

    async def respond(self, http: HttpRequest) -> HttpResponse:
        try:
            body = await _read_body(http, self.edge.api.cfg.max_body_bytes)
        except TooLarge as err:
            return _http(error_reply(err), head=False)
        except ClientDisconnect:
            log.debug("client left during the body of %s %s", http.method, http.url.path)
            return HttpResponse(status_code=400)
        req = Request(
            method=http.method, path=http.url.path, params=list(http.query_params.multi_items()),
            headers={k.lower(): v for k, v in http.headers.items()}, body=body,
            base_url=str(http.base_url).rstrip("/"),
        )
        out = _http(await self.edge.answer_async(req), head=http.method == "HEAD")
        challenge = self.edge.api.auth.challenge(out.status_code)
        if challenge is not None:
            out.headers["www-authenticate"] = challenge
        return out


async def _read_body(http: HttpRequest, limit: int) -> bytes:
    declared = http.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"Request body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in http.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"Request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _http(reply: Reply, head: bool) -> HttpResponse:
    status, data = reply
    if data is None:
        return HttpResponse(status_code=status)
    out = HttpResponse(b"" if head else data, status_code=status, media_type="application/json")
    if head:
        out.headers["content-length"] = str(len(data))
    return out
