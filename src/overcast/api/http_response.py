"""The bytes of an HTTP/1.1 answer: its body (``encode``), its head
(``head``), and an error as an answer (``error_reply``)."""

from __future__ import annotations

import http
import json
import time
from email.utils import formatdate

from overcast.api.errors import ApiError
from overcast.api.wire import Response

STATUS = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in http.HTTPStatus}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
Reply = tuple[int, bytes | None]  # an answer as sent: status, JSON body (None: none)


def encode(resp: Response) -> bytes | None:
    """The response's body as sent (None: no body); raises for a body JSON cannot hold."""
    if resp.body is None:
        return None
    return json.dumps(resp.body, separators=(",", ":")).encode()


def error_reply(err: ApiError) -> Reply:
    return err.status, encode(Response(err.status, err.body()))


def head(status: int, body: bytes | None, *, close: bool, http10: bool,
         challenge: str | None = None) -> bytes:
    """Status line and headers of an answer with this JSON ``body`` (None: none)
    and this WWW-Authenticate header (None: none)."""
    out = [STATUS.get(status) or f"HTTP/1.1 {status} \r\n".encode(),
           b"date: ", _CLOCK.http_date(), b"\r\n"]
    if challenge is not None:
        out += [b"www-authenticate: ", challenge.encode("latin-1", "replace"), b"\r\n"]
    if body is not None:
        out.append(b"content-type: application/json\r\n")
    if status >= 200 and status not in (204, 304):
        out += [b"content-length: ", str(len(body or b"")).encode(), b"\r\n"]
    if close:
        out.append(b"connection: close\r\n")
    elif http10:
        out.append(b"connection: keep-alive\r\n")
    out.append(b"\r\n")
    return b"".join(out)


class _Clock:
    """The Date header, formatted once a second."""

    __slots__ = ("second", "value")

    def __init__(self) -> None:
        self.second, self.value = 0, b""

    def http_date(self) -> bytes:
        now = int(time.time())
        if now != self.second:
            self.second, self.value = now, formatdate(now, usegmt=True).encode()
        return self.value


_CLOCK = _Clock()
