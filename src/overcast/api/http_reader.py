"""The reading side of one HTTP connection (``http_connection.Connection``
owns one ``RequestReader``): httptools' (llhttp's) callbacks, the head's
size counted as it is fed (``max_header_bytes``), the body's size
(``max_body_bytes``), an h2c upgrade's head read again without it, and each
request read in full assembled into a ``wire.Request`` and queued as an
``Item`` for the connection to answer in turn.  It writes nothing: the
connection sends the 100 Continue it asks for, and keeps the time limits
from the times it records."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

import httptools

from overcast.api.errors import ApiError, BadRequest, HeadTooLarge, TooLarge
from overcast.api.http_response import Reply, error_reply
from overcast.api.wire import Request

IDLE, HEAD, BODY, DONE = range(4)  # reading: no request, its head, its body; reading ended


@dataclass(slots=True)
class Item:
    """A request read in full (or the error that ended reading), to answer in turn."""
    req: Request | None
    resp: Reply | None  # the answer already known (an error), else None
    keep_alive: bool
    head: bool = False  # HEAD: no body in the answer
    http10: bool = False


class RequestReader:
    """Parses what a client sends into ``queue``; ``phase`` says where it is."""

    def __init__(self, max_header_bytes: int, max_body_bytes: int,
                 clock: Callable[[], float], wants_continue: Callable[[], None]) -> None:
        self.max_header_bytes, self.max_body_bytes = max_header_bytes, max_body_bytes
        self.clock = clock
        self.wants_continue = wants_continue  # called when a body awaits a 100 Continue
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[Item] = deque()  # read, not yet answered
        self.phase = IDLE
        self.accepted = self.since = clock()  # connected; began the head or body being read
        self.fresh = True  # no request yet: its head is due header_timeout after connecting
        self.head_bytes = 0  # of the head being read, as fed to the parser
        self.continue_due = False  # the body being read awaits a 100 Continue
        self.upgrading = False  # the head read asks to upgrade: it is read again without
        self.local = "localhost"  # the address connected to: the host of a request without one
        # the request being read
        self.url = b""
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.size = 0
        self.keep_alive, self.http10, self.method = True, False, ""

    def take(self, data: bytes) -> None:
        """Read ``data``; a malformed request is queued as its 400, and ends reading."""
        try:
            self._feed(data)
        except httptools.HttpParserUpgrade:  # CONNECT is read; nothing after it is HTTP
            if self.queue and self.queue[-1].req is not None:
                self.queue[-1].keep_alive = False
                self.phase = DONE
            else:
                self._refuse(BadRequest("Malformed request: protocol upgrades are not supported"))
        except httptools.HttpParserError as exc:
            self._refuse(BadRequest(f"Malformed request: {exc}"))

    def stop(self) -> None:
        """Nothing more is read."""
        self.phase = DONE

    def _feed(self, data: bytes) -> None:
        """Feed the parser, counting the head's bytes so that it never holds
        more than ``max_header_bytes`` of one."""
        view = memoryview(data)
        while view and self.phase != DONE:
            if self.phase == BODY:
                self.parser.feed_data(view)
                return
            room = self.max_header_bytes - self.head_bytes
            if room <= 0:
                self._refuse(HeadTooLarge(
                    f"Request header fields too large: the limit is "
                    f"{self.max_header_bytes} bytes"))
                return
            piece = view[:room]
            self.head_bytes += len(piece)  # a head ending in it sets this to 0
            try:
                self.parser.feed_data(piece)
            except httptools.HttpParserUpgrade as up:
                if not self.upgrading:
                    raise
                self._read_again_without_upgrade()
                view = view[int(up.args[0]):]
                continue
            view = view[room:]

    def _read_again_without_upgrade(self) -> None:
        """llhttp ends a request that asks to upgrade (``curl --http2``: h2c)
        at its head, leaving its body unread.  We speak HTTP/1.1 only, so the
        upgrade is ignored: a new parser reads the same head without its
        Upgrade header, then the body as usual."""
        self.upgrading = False
        version = self.parser.get_http_version()
        lines = [f"{self.method} ".encode(), self.url, f" HTTP/{version}\r\n".encode()]
        for name, value in self.raw_headers:
            if name != b"upgrade":
                lines += [name, b": ", value, b"\r\n"]
        lines.append(b"\r\n")
        self.parser = httptools.HttpRequestParser(self)
        self.parser.feed_data(b"".join(lines))

    def _refuse(self, err: ApiError) -> None:
        """Stop reading; answer ``err`` after what was read before, then end."""
        self.queue.append(Item(None, error_reply(err), False))
        self.phase = DONE

    # httptools' calls ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.phase == DONE:
            return
        self.phase = HEAD
        self.since = self.accepted if self.fresh else self.clock()
        self.fresh = False
        self.url, self.raw_headers = b"", []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        if self.phase == DONE:
            return
        self.method = self.parser.get_method().decode("latin-1")
        if self.parser.should_upgrade() and self.method != "CONNECT":
            self.upgrading = True  # the parser skips its body: see _read_again_without_upgrade
            return
        self.phase, self.since, self.head_bytes = BODY, self.clock(), 0
        self.keep_alive = self.parser.should_keep_alive()
        self.http10 = self.parser.get_http_version() == "1.0"
        self.headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in self.raw_headers}
        self.body, self.size = [], 0
        limit = self.max_body_bytes
        declared = self.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            self._refuse(TooLarge(f"Request body of {declared} bytes exceeds the limit of "
                                  f"{limit} bytes"))
        elif self.headers.get("expect", "").lower() == "100-continue" and not self.http10:
            self.continue_due = True
            self.wants_continue()

    def on_body(self, body: bytes) -> None:
        if self.phase == DONE:
            return
        self.continue_due = False  # the client did not wait for it
        self.size += len(body)
        limit = self.max_body_bytes
        if self.size > limit:
            self._refuse(TooLarge(f"Request body exceeds the limit of {limit} bytes"))
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.phase == DONE or self.upgrading:
            return
        self.phase, self.continue_due = IDLE, False
        req = self._request()
        self.body, self.raw_headers = [], []
        self.queue.append(Item(req, None, self.keep_alive, self.method == "HEAD", self.http10))

    def _request(self) -> Request:
        try:
            url = httptools.parse_url(self.url)
        except httptools.HttpParserInvalidURLError:  # e.g. CONNECT's host:port: no route has it
            path, query = self.url.decode("latin-1"), b""
        else:
            path, query = url.path.decode("latin-1"), url.query or b""
        if "%" in path:
            path = unquote(path)
        params = parse_qsl(query.decode("latin-1"), keep_blank_values=True) if query else []
        host = self.headers.get("host") or self.local
        return Request(self.method, path, params, self.headers, b"".join(self.body),
                       f"http://{host}")


def address(sockname: Any) -> str:
    """``host:port`` of a socket address (``[host]:port`` for IPv6)."""
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        host, port = sockname[0], sockname[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return "localhost"
