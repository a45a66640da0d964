"""Run Keystone's public WSGI application on 127.0.0.1:PORT under the
standard library's WSGI server, one thread per connection and one request
in the application at a time (``python keystone_wsgi.py PORT``, with the
keystone virtualenv's Python and ``OS_KEYSTONE_CONFIG_FILES`` naming its
configuration).  For tests only.  The port is taken off the command line
first: Keystone's configuration parses it.

One at a time: SQLite takes one writer, and two requests writing at once
failed with "database is locked" (a 500 to the client: tempest's dynamic
credentials create projects, users and role assignments from two workers
at once); Keystone's work is Python under one GIL anyway."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


def one_at_a_time(app: Callable[..., Iterable[bytes]]) -> Callable[..., list[bytes]]:
    """``app`` behind a lock, its whole answer read inside it."""
    lock = threading.Lock()

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with lock:
            body = app(environ, start_response)
            try:
                return list(body)
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()
    return serve


def main(port: int) -> None:
    from keystone.server.wsgi import initialize_public_application

    app = one_at_a_time(initialize_public_application())
    server = make_server("127.0.0.1", port, app, ThreadingWSGIServer, QuietHandler)
    server.serve_forever()


if __name__ == "__main__":
    port = int(sys.argv.pop(1))
    main(port)
