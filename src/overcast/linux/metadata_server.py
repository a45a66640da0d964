"""The metadata service's HTTP adapter: one small threaded HTTP server on
``address:port`` of the namespace it is started in (its socket is made
there; the threads may run anywhere), answering each GET with
:func:`overcast.services.metadata.respond` for the port its source address
is (``lookup``).  Requests are small and few (cloud-init at boot): a thread
per request, a bounded request size and a timeout per connection."""

from __future__ import annotations

import logging
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from overcast.services import metadata

log = logging.getLogger(__name__)

Lookup = Callable[[str], "metadata.MetaPort | None"]
TIMEOUT = 5.0  # seconds a connection may take


MAX_CONNECTIONS = 32  # at once; more are closed at accept (a VM must not hold the agent's threads)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    lookup: Lookup
    slots: threading.BoundedSemaphore  # this server's connections at once

    def server_bind(self) -> None:
        """Bind, without HTTPServer's reverse lookup of the address (``getfqdn``):
        it would ask the host's resolver from inside the router's namespace, a
        query that must not leave and that stalled the agent's pass for seconds."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = TIMEOUT
    server_version = "Overcast-metadata"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self._answer("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._answer("POST")

    def _answer(self, method: str) -> None:
        try:
            port = self.server.lookup(self.client_address[0])
        except Exception:  # noqa: BLE001 - a failing lookup is a 500, not a dead server
            log.exception("metadata: lookup of %s failed", self.client_address[0])
            port, reply = None, metadata.Reply(500, b"Internal Server Error\n")
        else:
            reply = metadata.respond(method, self.path, port)
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        log.debug("metadata %s: %s", self.client_address[0], format % args)


class MetadataServer:
    def __init__(self, address: str, lookup: Lookup, port: int = 80) -> None:
        self.address, self.port, self._lookup = address, port, lookup
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind (OSError naming the address when it cannot) and serve in a thread."""
        try:
            server = _Server((self.address, self.port), _Handler)
        except OSError as exc:
            raise OSError(exc.errno, f"metadata on {self.address}:{self.port}: {exc.strerror}"
                          ) from None
        server.lookup = self._lookup
        server.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                                        name=f"metadata-{self.address}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
