"""The agent's packet log lines (``agent/packet_log.py``): a logged packet is
told for the port of its bridge port, and only for that port's events."""

from __future__ import annotations

from overcast.agent.packet_log import PacketLog
from overcast.linux.nflog import Logged
from overcast.plan.firewall import PortLog

IP = bytes.fromhex("450000280000400040060000" "0a06000b" "0a06000d") + bytes.fromhex("9c401b76")


def told(*packets: Logged) -> list[str]:
    lines: list[str] = []
    log = PacketLog({41: "tap-a", 42: "tap-b"}.get, lines.append)
    log.update({"port-a": PortLog(("DROP",), ("log-1",), "proj")}, {"port-a": "tap-a",
                                                                    "port-b": "tap-b"})
    for packet in packets:
        log.on_packet(packet)
    return lines


def test_a_drop_is_told_for_the_port_its_direction_names() -> None:
    assert told(Logged("overcast ingress DROP", {"physoutdev": 41, "physindev": 42}, IP)) == [
        "action=DROP direction=ingress port=port-a project=proj log_ids=log-1 "
        "tcp 10.6.0.11:40000 -> 10.6.0.13:7030"]
    # egress: the port it came in by (port-b, not logged)
    assert told(Logged("overcast egress DROP", {"physoutdev": 41, "physindev": 42}, IP)) == []


def test_other_events_prefixes_and_gone_devices_tell_nothing() -> None:
    assert told(Logged("overcast ingress ACCEPT", {"physoutdev": 41}, IP),  # not its event
                Logged("someone ingress DROP", {"physoutdev": 41}, IP),  # not our prefix
                Logged("overcast ingress DROP", {"physoutdev": 99}, IP),  # gone since
                Logged("overcast ingress DROP", {}, IP)) == []
