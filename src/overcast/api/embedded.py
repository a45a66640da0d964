"""Run the API inside the current process on a background thread (tests,
benchmarks, tools that want a private server)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from overcast.api.app import create_app
from overcast.api.service import Api


class EmbeddedServer:
    def __init__(self, api: Api, host: str = "127.0.0.1", port: int = 0) -> None:
        self.api = api
        if port == 0:
            port = _free_port(host)
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(create_app(api), host=host, port=port, log_level="warning",
                                access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="overcast-api",
                                        daemon=True)

    def start(self, timeout: float = 10.0) -> EmbeddedServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the embedded API did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
