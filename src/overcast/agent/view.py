"""The agent's in-memory copy of the store, kept current by watch events.

Applying events is pure bookkeeping: it only says whether the change matters
to the plan (so the loop knows the view is dirty).  Nothing here touches the
kernel.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from overcast.model import keys
from overcast.model.types import Network, Port
from overcast.plan import HostView
from overcast.store.base import Event, KeyValue

log = logging.getLogger(__name__)

# Object kinds the planner reads; other keys are kept but never make the view dirty.
PLANNED_KINDS = ("network", "port", "subnet")
MODELS: dict[str, type[Any]] = {"network": Network, "port": Port}


class ModelView:
    """Key -> decoded JSON value for every key under ``/oc/``."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {kind: {} for kind in MODELS}  # kind -> key -> obj
        self.revision = 0

    def load(self, kvs: Iterable[KeyValue], revision: int) -> None:
        """Replace everything with a full read taken at ``revision``."""
        self.values = {}
        self.models = {kind: {} for kind in MODELS}
        for kv in kvs:
            self._put(kv.key, kv.value)
        self.revision = revision

    def apply(self, events: Iterable[Event]) -> bool:
        """Apply watch events in order; True when the plan's input changed."""
        relevant = False
        for ev in events:
            before = self.values.get(ev.key)
            if ev.type == "put":
                self._put(ev.key, ev.value)
            else:
                self.values.pop(ev.key, None)
                self._model_of(ev.key).pop(ev.key, None)
            relevant = relevant or _matters(ev.key, before, self.values.get(ev.key))
            self.revision = max(self.revision, ev.revision)
        return relevant

    def _put(self, key: str, raw: bytes) -> None:
        try:
            value = json.loads(raw) if raw else {}
        except (ValueError, UnicodeDecodeError):
            log.warning("store key %s holds a value that is not JSON; ignored", key)
            return
        self.values[key] = value if isinstance(value, dict) else {"value": value}
        kind = _kind(key)
        if kind in MODELS:
            decoded = _decode(MODELS[kind], [self.values[key]])
            if decoded:
                self.models[kind][key] = decoded[0]
            else:
                self.models[kind].pop(key, None)

    def _model_of(self, key: str) -> dict[str, Any]:
        return self.models.get(_kind(key) or "", {})

    def objects(self, kind: str) -> list[dict[str, Any]]:
        prefix = keys.obj(kind)
        return [v for k, v in self.values.items() if k.startswith(prefix)]

    def hosts(self) -> dict[str, str]:
        """Every registered host's underlay IP."""
        out = {}
        for key, value in self.values.items():
            if key.startswith(keys.HOST) and value.get("underlay_ip"):
                out[key[len(keys.HOST):]] = str(value["underlay_ip"])
        return out

    def ports(self) -> list[Port]:
        return list(self.models["port"].values())

    def networks(self) -> list[Network]:
        return list(self.models["network"].values())

    def host_view(self, host: str, underlay_ip: str) -> HostView:
        hosts = self.hosts()
        hosts[host] = underlay_ip
        return HostView(host=host, underlay_ip=underlay_ip, hosts=hosts,
                        networks=self.networks(), ports=self.ports())

    def port_status(self, port_id: str) -> dict[str, Any] | None:
        return self.values.get(keys.port_status(port_id))

    def statuses_of_host(self, host: str) -> dict[str, dict[str, Any]]:
        """Port statuses this host wrote (port id -> value)."""
        prefix = keys.PORT_STATUS
        return {k[len(prefix):]: v for k, v in self.values.items()
                if k.startswith(prefix) and v.get("host") == host}


def _kind(key: str) -> str | None:
    """The object kind of a ``/oc/obj/<kind>/<id>`` key, else None."""
    if not key.startswith(keys.OBJ):
        return None
    return key[len(keys.OBJ):].split("/", 1)[0]


def _matters(key: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> bool:
    if key.startswith(keys.HOST):
        return (before or {}).get("underlay_ip") != (after or {}).get("underlay_ip")
    return _kind(key) in PLANNED_KINDS


def _decode(cls: type[Any], values: list[dict[str, Any]]) -> list[Any]:
    out = []
    for value in values:
        try:
            out.append(cls.from_stored(value))
        except (TypeError, ValueError) as exc:
            log.warning("cannot decode %s %s: %s", cls.__name__, value.get("id"), exc)
    return out
