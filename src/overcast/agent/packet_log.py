"""Security group packet logs (Neutron's logging) on this host: the packets
the firewall logged (``linux/nflog.py``), told as one line each for the
ports that a log names (``docs/firewall.md``, "Packet logs").

The kernel logs by group set (a port's tag), so it logs the packets of
every port of this host that shares the logged port's groups; here each
packet is matched to its port by the tap it came in from (egress) or goes
out to (ingress), and told only when that port's logs ask for its event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from overcast.linux.nflog import Logged
from overcast.plan.firewall import PortLog
from overcast.plan.firewall_chains import LOG_PREFIX

log = logging.getLogger("overcast.packet_log")


class PacketLog:
    """Each logged packet of a logged port, as a line given to ``write``;
    ``name_of``: an interface's name by its index (``nflog.interface_name``),
    None when it is gone."""

    def __init__(self, name_of: Callable[[int], str | None],
                 write: Callable[[str], None] | None = None) -> None:
        self.write = write or (lambda line: log.info("%s", line))
        self.name_of = name_of
        self._ports: Mapping[str, tuple[str, PortLog]] = {}  # tap -> (port id, its logs)

    def update(self, logged: Mapping[str, PortLog], devices: Mapping[str, str]) -> None:
        """The logged ports of this pass (port id -> its logs) and their taps."""
        self._ports = {devices[pid]: (pid, entry) for pid, entry in logged.items()
                       if pid in devices}

    def on_packet(self, packet: Logged) -> None:
        words = packet.prefix.split()
        if len(words) != 3 or words[0] != LOG_PREFIX:
            return
        _, direction, event = words
        index = packet.devices.get("physindev" if direction == "egress" else "physoutdev")
        if index is None:
            return
        tap = self.name_of(index)
        found = self._ports.get(tap) if tap is not None else None
        if found is None or event not in found[1].events:
            return
        port_id, entry = found
        self.write(f"action={event} direction={direction} port={port_id} "
                   f"project={entry.project_id} log_ids={','.join(entry.log_ids)} "
                   f"{packet.summary()}")


def file_writer(path: str) -> Callable[[str], None]:
    """Lines appended to ``path``, each with its UTC time, one write each."""
    lock = threading.Lock()
    out = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - the agent's lifetime

    def write(line: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        with lock:
            out.write(f"{stamp}Z {line}\n")
    return write
