"""The network part of the EC2-style metadata that cloud-init reads, sans-IO:
the answer to one GET, for the port the request came from.

Paths (as EC2 and Nova's metadata API serve them; a directory lists its
entries one per line, a subdirectory with a trailing slash):

- ``/`` and ``/latest/``: the versions and ``meta-data/``;
- ``/latest/meta-data/``: ``hostname``, ``instance-id``, ``local-hostname``,
  ``local-ipv4``, ``mac``, ``public-hostname``, ``public-ipv4``, ``network/``;
- ``/latest/meta-data/network/interfaces/macs/<mac>/``: ``local-ipv4s``,
  ``mac``, ``public-ipv4s``, ``subnet-ipv4-cidr-block``, ``device-number``.

A request from an address that is no port of this host on that network gets
a 404 and nothing about any port.
"""

from __future__ import annotations

from dataclasses import dataclass

VERSIONS = ("latest",)
TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True, order=True)
class MetaPort:
    """What the metadata service says to the port with address ``ip``."""

    ip: str
    port_id: str
    instance_id: str
    mac: str
    local_hostname: str
    cidr: str = ""
    public_ipv4: str = ""
    public_hostname: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    content_type: str = TEXT


NOT_FOUND = Reply(404, b"Not Found\n")


def respond(method: str, path: str, port: MetaPort | None) -> Reply:
    """The reply to ``method path`` from ``port`` (None: not a port here)."""
    if method not in ("GET", "HEAD"):
        return Reply(405, b"Method Not Allowed\n")
    if port is None:
        return NOT_FOUND
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if not parts:
        return _listing([f"{v}/" for v in VERSIONS])
    if parts[0] not in VERSIONS:
        return NOT_FOUND
    tree = _tree(port)
    node: object = {"meta-data": tree}
    for part in parts[1:]:
        if not isinstance(node, dict) or part not in node:
            return NOT_FOUND
        node = node[part]
    if isinstance(node, dict):
        return _listing([f"{k}/" if isinstance(v, dict) else k for k, v in sorted(node.items())])
    return Reply(200, str(node).encode())


def _tree(port: MetaPort) -> dict[str, object]:
    mac: dict[str, object] = {"mac": port.mac, "local-ipv4s": port.ip, "device-number": "0"}
    if port.cidr:
        mac["subnet-ipv4-cidr-block"] = port.cidr
    tree: dict[str, object] = {
        "instance-id": port.instance_id or port.port_id,
        "hostname": port.local_hostname,
        "local-hostname": port.local_hostname,
        "local-ipv4": port.ip,
        "mac": port.mac,
        "network": {"interfaces": {"macs": {port.mac: mac}}},
    }
    if port.public_ipv4:
        tree["public-ipv4"] = port.public_ipv4
        mac["public-ipv4s"] = port.public_ipv4
    if port.public_hostname:
        tree["public-hostname"] = port.public_hostname
    return tree


def _listing(entries: list[str]) -> Reply:
    return Reply(200, "".join(f"{e}\n" for e in entries).encode())
