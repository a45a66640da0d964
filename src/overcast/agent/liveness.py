"""Host registration and liveness.

``/oc/host/<name>`` holds the Host record (written at start and whenever the
heartbeat timestamp is refreshed); ``/oc/alive/<name>`` is attached to a
lease that the keep-alive renews.  If the lease was lost (the process was
stopped longer than its TTL), a new one is granted and the key re-attached.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from overcast.model import keys
from overcast.model.types import Host
from overcast.store.base import LeaseNotFound, Store, StoreError

log = logging.getLogger(__name__)

LEASE_TTL = 10.0
HEARTBEAT_EVERY = 30.0  # seconds between heartbeat_timestamp refreshes


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def host_id(name: str) -> str:
    """Stable across restarts: the same host keeps its agent id."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"overcast-agent.{name}"))


class Liveness:
    def __init__(self, store: Store, name: str, underlay_ip: str,
                 features: dict[str, Any] | None = None, ttl: float = LEASE_TTL,
                 availability_zone: str = "nova") -> None:
        self.store = store
        self.ttl = ttl
        self.host = Host(id=host_id(name), name=name, host=name, underlay_ip=underlay_ip,
                         started_at=utc_now(), heartbeat_timestamp=utc_now(),
                         features=dict(features or {}), availability_zone=availability_zone)
        self.lease = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self) -> None:
        self.write_host()
        self._attach_lease()

    def write_host(self) -> None:
        self.host = self.host.replace(heartbeat_timestamp=utc_now())
        self.store.put(keys.host(self.host.host), json.dumps(self.host.to_stored()).encode())

    def _attach_lease(self) -> None:
        self.lease = self.store.lease_grant(self.ttl)
        value = json.dumps({"host": self.host.host, "started_at": self.host.started_at})
        self.store.put(keys.alive(self.host.host), value.encode(), lease=self.lease)

    def beat(self) -> None:
        """One keep-alive; re-grants the lease if it was lost."""
        try:
            self.store.lease_keepalive(self.lease)
        except LeaseNotFound:
            log.warning("lease %s expired; registering again", self.lease)
            self._attach_lease()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="liveness", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        interval = self.ttl / 3
        since_heartbeat = 0.0
        while not self._stop.wait(interval):
            try:
                self.beat()
                since_heartbeat += interval
                if since_heartbeat >= HEARTBEAT_EVERY:
                    self.write_host()
                    since_heartbeat = 0.0
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any store error
                log.error("keep-alive failed: %s", exc)

    def stop(self, revoke: bool = True) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if revoke and self.lease:
            try:
                self.store.lease_revoke(self.lease)
            except StoreError as exc:
                log.warning("lease revoke failed: %s", exc)
