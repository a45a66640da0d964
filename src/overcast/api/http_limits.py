"""What one client may hold of an API worker, in one place: the HTTP edge's
timeouts, its request-head and connection limits, and which requests leave
the event loop for a thread (and how many may wait for one).  ``overcast server`` sets them from its options;
the body-size limit is the API's own (``ApiConfig.max_body_bytes``)."""

from __future__ import annotations

import resource
from dataclasses import dataclass

FD_RESERVE = 64  # descriptors kept free of connections: store, loop, logs, a burst of accepts


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    idle_timeout: float = 15.0  # s a connection may wait between requests (keep-alive)
    header_timeout: float = 10.0  # s from connect (or a request's first byte) to its head's end
    body_timeout: float = 60.0  # s from the end of the head to the end of the body
    max_header_bytes: int = 64 * 1024  # request line and headers; larger: 431
    max_connections: int = 1024  # per worker; at the cap the oldest idle one is closed
    threaded_body_bytes: int = 4 * 1024  # POST/PUT bodies above this run in the thread pool
    threads: int = 16  # the worker's pool for listings, bulk bodies and slow deletes
    backlog_per_thread: int = 4  # requests in the pool (running or waiting) per thread; more: 503
    linger: float = 2.0  # s an ended connection drains what the client still sends

    def connection_cap(self) -> int:
        """``max_connections``, lowered to stay ``FD_RESERVE`` below this
        process's descriptor limit (RLIMIT_NOFILE), so that accepting never
        fails for want of a descriptor."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return self.max_connections
        return max(1, min(self.max_connections, soft - FD_RESERVE))

    def pool_backlog(self) -> int:
        """Requests the pool may hold at once, running or waiting."""
        return self.threads * self.backlog_per_thread

    def problems(self) -> list[tuple[str, str]]:
        """What is out of range: (field, what is wrong) each; empty if nothing."""
        out = [(name, f"must be > 0, not {value}") for name, value in (
            ("idle_timeout", self.idle_timeout), ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout), ("max_connections", self.max_connections),
            ("threads", self.threads), ("backlog_per_thread", self.backlog_per_thread),
            ("linger", self.linger),
        ) if not value > 0]
        if self.max_header_bytes < 1024:
            out.append(("max_header_bytes", f"must be at least 1024, not {self.max_header_bytes}"))
        if self.threaded_body_bytes < 0:
            out.append(("threaded_body_bytes", f"must be >= 0, not {self.threaded_body_bytes}"))
        return out
