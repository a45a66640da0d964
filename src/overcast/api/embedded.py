"""Run the API inside the current process on a background thread (tests,
benchmarks, tools that want a private server): the same HTTP server and
limits as ``overcast server``, on a loopback port of its own."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

from overcast.api.http_limits import EdgeLimits
from overcast.api.http_server import BACKLOG, SHUTDOWN_GRACE, HttpServer, new_loop
from overcast.api.service import Api


class EmbeddedServer:
    def __init__(self, api: Api, host: str = "127.0.0.1", port: int = 0,
                 limits: EdgeLimits | None = None, grace: float = SHUTDOWN_GRACE) -> None:
        self.api = api
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.create_server((host, port), family=family, backlog=BACKLOG)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        port = int(self.sock.getsockname()[1])
        self.url = f"http://[{host}]:{port}" if family == socket.AF_INET6 else f"http://{host}:{port}"
        self.http = HttpServer(api, limits, grace)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="overcast-api", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            await self.http.serve(self.sock, self._stop, started=self._started.set)

        with asyncio.Runner(loop_factory=new_loop) as runner:
            runner.run(main())

    def start(self, timeout: float = 10.0) -> EmbeddedServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._started.wait(0.01):
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the embedded API did not start on {self.url}")
        return self

    def stop(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self._thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
            self._thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
