"""Background processes of the lab (API server, agents), tracked by PID.

A process is identified by its PID *and* its start time (field 22 of
``/proc/PID/stat``), so a recycled PID is never signalled by mistake.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from overcast.lab.ipcmd import LabError


def start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` in clock ticks, or None if gone/zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


# in namespace ns: a mount namespace of its own whose /run/netns still shares mounts with the
# host's (``ip netns exec`` makes it a slave: a router namespace an agent made there could not
# be entered by anyone else and would die with the agent), and a /sys of that network namespace
# (as ip netns exec gives: the agent reads /sys/class/net)
_OWN_SYS = 'mount --make-rslave /sys && umount -l /sys && mount -t sysfs sysfs /sys && exec "$@"'


def in_netns(ns: str, argv: list[str]) -> list[str]:
    """``argv`` run in network namespace ``ns``; every step execs in place, so
    the PID is the command's own."""
    return ["nsenter", f"--net=/run/netns/{ns}", "--", "unshare", "--mount", "--propagation",
            "unchanged", "--", "sh", "-c", _OWN_SYS, argv[0], *argv]


def start(name: str, argv: list[str], directory: Path, ns: str | None = None) -> dict[str, Any]:
    """Start ``argv`` detached (inside namespace ``ns``, :func:`in_netns`),
    logging to ``<name>.log``."""
    full = in_netns(ns, argv) if ns else argv
    log = open(directory / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(full, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    finally:
        log.close()
    (directory / f"{name}.pid").write_text(f"{proc.pid}\n")
    started = None
    for _ in range(50):
        started = start_time(proc.pid)
        if started is not None:
            break
        time.sleep(0.01)
    return {"pid": proc.pid, "start": started, "argv": full}


def is_running(record: dict[str, Any]) -> bool:
    now = start_time(int(record["pid"]))
    return now is not None and (record.get("start") is None or now == record["start"])


def stop(record: dict[str, Any], sig: int = signal.SIGTERM, grace: float = 5.0) -> None:
    """Signal exactly this process; SIGKILL it if it outlives ``grace`` seconds."""
    pid = int(record["pid"])
    if not is_running(record):
        return
    os.kill(pid, sig)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not is_running(record):
            return
        _reap(pid)
        time.sleep(0.05)
    if is_running(record):
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            _reap(pid)
            if not is_running(record):
                return
            time.sleep(0.02)
        raise LabError(f"process {pid} ({' '.join(record.get('argv', []))}) did not die")


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
