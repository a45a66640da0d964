"""Run Keystone's public WSGI application on 127.0.0.1:PORT under the
standard library's WSGI server, one thread per request (``python
keystone_wsgi.py PORT``, with the keystone virtualenv's Python and
``OS_KEYSTONE_CONFIG_FILES`` naming its configuration).  For tests only.
The port is taken off the command line first: Keystone's configuration
parses it."""

from __future__ import annotations

import sys
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


def main(port: int) -> None:
    from keystone.server.wsgi import initialize_public_application

    app = initialize_public_application()
    server = make_server("127.0.0.1", port, app, ThreadingWSGIServer, QuietHandler)
    server.serve_forever()


if __name__ == "__main__":
    port = int(sys.argv.pop(1))
    main(port)
