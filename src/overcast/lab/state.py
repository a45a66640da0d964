"""The lab's memory: what it made, so that ``lab down`` removes exactly that.

Everything lives under the state directory (default ``/run/overcast/lab``,
``OVERCAST_LAB_DIR`` overrides): ``state.json`` (topology, namespaces made,
processes started, VMs), ``store.db``, ``<process>.pid`` and ``<process>.log``.
Updates take an exclusive ``flock`` so concurrent ``vm create`` calls are safe.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DIR = "/run/overcast/lab"


def state_dir() -> Path:
    return Path(os.environ.get("OVERCAST_LAB_DIR", DEFAULT_DIR))


@dataclass
class LabState:
    topology: dict[str, Any] = field(default_factory=dict)
    namespaces: list[str] = field(default_factory=list)
    processes: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> pid, start, argv
    vms: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add_namespace(self, name: str) -> None:
        if name not in self.namespaces:
            self.namespaces.append(name)

    def to_json(self) -> str:
        return json.dumps(
            {"topology": self.topology, "namespaces": self.namespaces,
             "processes": self.processes, "vms": self.vms},
            indent=2, sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> LabState:
        data = json.loads(text) if text.strip() else {}
        return cls(
            topology=data.get("topology", {}),
            namespaces=list(data.get("namespaces", [])),
            processes=dict(data.get("processes", {})),
            vms=dict(data.get("vms", {})),
        )


def state_file() -> Path:
    return state_dir() / "state.json"


def store_url() -> str:
    return f"sqlite://{(state_dir() / 'store.db').resolve()}"


def load() -> LabState | None:
    """The current lab's state, or None when no lab is up."""
    path = state_file()
    if not path.exists():
        return None
    return LabState.from_json(path.read_text())


@contextlib.contextmanager
def locked() -> Iterator[LabState]:
    """Read-modify-write the state under an exclusive lock."""
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "state.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = state_file()
        current = LabState.from_json(path.read_text()) if path.exists() else LabState()
        yield current
        tmp = path.with_suffix(".tmp")
        tmp.write_text(current.to_json())
        tmp.replace(path)


def remove_all() -> None:
    """Delete the state directory's files (only those the lab writes)."""
    directory = state_dir()
    if not directory.exists():
        return
    for child in directory.iterdir():
        if child.suffix in {".json", ".pid", ".log", ".lock", ".tmp", ".db"} or \
                child.name.startswith("store.db"):
            child.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        directory.rmdir()
