"""The HTTP edge: a Starlette app that turns requests into ``wire.Request``.

Requests run on the event loop's thread: they are short (a few store reads
and one transaction) and CPU-bound, so a thread hop would only add GIL
hand-offs (measured: a third less throughput, twice the p99).  Collection
listings, large bodies (bulk creates) and deletes that scan every port are
the exception (``_slow``: the large-body rule, and each route's ``slow`` flag
in ``routes.ROUTES``): they can take long enough to stall the other
connections of this process, so they run in a worker thread.  A write waiting for the store's writer gate blocks this
process for at most the store's busy timeout."""

from __future__ import annotations

import json
import logging

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as HttpRequest
from starlette.responses import Response as HttpResponse
from starlette.routing import Route

from overcast.api.errors import TooLarge
from overcast.api.routes import ROUTES
from overcast.api.service import Api
from overcast.api.wire import Request, Response

log = logging.getLogger("overcast.api")
LARGE_BODY = 64 * 1024  # bytes; a bulk create of a few hundred objects


def create_app(api: Api) -> Starlette:
    async def endpoint(http: HttpRequest) -> HttpResponse:
        try:
            body = await _read_body(http, api.cfg.max_body_bytes)
        except TooLarge as err:
            return _json(Response(err.status, err.body()))
        req = Request(
            method=http.method, path=http.url.path, params=list(http.query_params.multi_items()),
            headers={k.lower(): v for k, v in http.headers.items()}, body=body,
            base_url=str(http.base_url).rstrip("/"),
        )
        try:
            if _slow(http.method, req.path, len(body)):
                resp = await run_in_threadpool(api.handle, req)
            else:
                resp = api.handle(req)
        except Exception:  # a bug: answer 500 in the Neutron shape, log the traceback
            log.exception("internal error on %s %s", http.method, http.url.path)
            resp = Response(500, {"NeutronError": {
                "type": "HTTPInternalServerError",
                "message": "Request failed: internal server error while processing your request.",
                "detail": ""}})
        return _json(resp)

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]
    return Starlette(routes=[Route("/{path:path}", endpoint, methods=methods)])


def _slow(method: str, path: str, body_size: int) -> bool:
    """Requests that may take long enough to stall this process's other
    connections: bulk bodies, and the routes marked slow (listings, deletes
    that look at every port: a security group or QoS policy still in use)."""
    return body_size > LARGE_BODY or ROUTES.is_slow(method, path)


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


def _json(resp: Response) -> HttpResponse:
    if resp.body is None:
        return HttpResponse(status_code=resp.status)
    data = json.dumps(resp.body, separators=(",", ":")).encode()
    return HttpResponse(data, status_code=resp.status, media_type="application/json")
