"""Every kernel name and ownership mark Overcast uses comes from here.

Linux interface names have at most 15 characters.  Workload NICs follow the
Neutron habit (``tap`` + 11 characters of the port id); devices Overcast
creates itself carry the prefix ``oc``, a kind letter and 11 hex characters of
the owning object's id, plus an ``ifalias`` mark ``overcast:<kind>:<id>``.
A device is Overcast's (and may be changed or deleted by it) only if both the
name and the mark say so.  The same holds for nftables tables: the name starts
with ``overcast`` and the table's ``comment`` is a mark.
"""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "BRIDGE_PREFIX",
    "FW_MARK",
    "FW_RULE_MARK",
    "FW_TABLE",
    "IFNAMSIZ",
    "MARK_PREFIX",
    "NFT_TABLE_PREFIX",
    "OWNED_PREFIXES",
    "PORT_GROUP",
    "ROUTER_IF_PREFIX",
    "ROUTER_NETNS_PREFIX",
    "ROUTER_PORT_PREFIX",
    "ROUTE_PROTO",
    "TAP_PREFIX",
    "VXLAN_PREFIX",
    "bridge_name",
    "is_fw_table",
    "is_owned",
    "is_owned_table",
    "is_workload",
    "network_mark",
    "network_of_mark",
    "router_if_name",
    "router_mark",
    "router_netns",
    "router_of_mark",
    "router_port_mark",
    "router_port_name",
    "host_tag",
    "is_router_netns",
    "tap_name",
    "vxlan_name",
]

TAP_PREFIX = "tap"
# the interface group (IFLA_GROUP) of every workload device Overcast attaches
# to one of its bridges: the firewall drops frames of such a port that has no
# tag (no rules yet), and leaves devices of other bridges alone
PORT_GROUP = 0x6F63
BRIDGE_PREFIX = "ocb"
VXLAN_PREFIX = "ocx"
# the host side of a router interface's veth pair (its other end, ``qr-``, is in the
# router's namespace)
ROUTER_PORT_PREFIX = "ocq"
OWNED_PREFIXES = (BRIDGE_PREFIX, VXLAN_PREFIX, ROUTER_PORT_PREFIX)
NFT_TABLE_PREFIX = "overcast"  # nftables tables (``table bridge overcast``, ...)
MARK_PREFIX = "overcast:"
IFNAMSIZ = 15
ID_CHARS = 11


def is_owned(name: str, alias: str | None) -> bool:
    """True only for devices Overcast created: owned prefix AND our mark."""
    return name.startswith(OWNED_PREFIXES) and (alias or "").startswith(MARK_PREFIX)


def is_owned_table(name: str, comment: str | None) -> bool:
    """True only for nftables tables Overcast created: owned prefix AND our
    mark as the table's comment."""
    return name.startswith(NFT_TABLE_PREFIX) and (comment or "").startswith(MARK_PREFIX)


def is_workload(name: str) -> bool:
    """True for VM/container NICs (created by QEMU or the lab, not by us)."""
    return name.startswith(TAP_PREFIX)


def _short(object_id: str) -> str:
    """First 11 characters of an id with the dashes removed, lower case."""
    return object_id.replace("-", "").lower()[:ID_CHARS]


def tap_name(port_id: str) -> str:
    """Host-side device of a VM port: ``tap`` + first 11 chars of the port id."""
    return TAP_PREFIX + port_id[:ID_CHARS]


def bridge_name(network_id: str) -> str:
    return BRIDGE_PREFIX + _short(network_id)


def vxlan_name(network_id: str) -> str:
    return VXLAN_PREFIX + _short(network_id)


def network_mark(network_id: str) -> str:
    """The ``ifalias`` written on every device made for a network."""
    return f"{MARK_PREFIX}net:{network_id}"


def network_of_mark(alias: str) -> str | None:
    """The network id in a mark made by :func:`network_mark`, else None."""
    prefix = f"{MARK_PREFIX}net:"
    return alias[len(prefix) :] if alias.startswith(prefix) else None


# --- the firewall (port security, security groups): one owned table per family ---
FW_TABLE = f"{NFT_TABLE_PREFIX}_fw"  # ``table bridge overcast_fw``, ``table inet overcast_fw``
FW_MARK = f"{MARK_PREFIX}fw"  # the comment of both tables
FW_RULE_MARK = f"{MARK_PREFIX}fw:"  # prefix of the comment of every rule in them


def is_fw_table(name: str, comment: str | None) -> bool:
    """True only for the firewall's own tables (name AND mark)."""
    return name == FW_TABLE and comment == FW_MARK


# --- routers: a namespace per router per host -----------------------------------
ROUTER_NETNS_PREFIX = "ocr-"
ROUTER_IF_PREFIX = "qr-"  # a router interface inside its namespace
ROUTER_GW_PREFIX = "qg-"  # the router's gateway port (on its SNAT host)
ROUTER_SNAT_PREFIX = "sg-"  # the router's SNAT port (on its SNAT host)
ROUTER_FIP_PREFIX = "qf-"  # the floating IPs' device of a router on a host (external network)
ROUTER_IF_PREFIXES = (ROUTER_IF_PREFIX, ROUTER_GW_PREFIX, ROUTER_SNAT_PREFIX, ROUTER_FIP_PREFIX)
ROUTER_MARK_PREFIX = f"{MARK_PREFIX}router:"
ROUTE_PROTO = 111  # rtm_protocol of every route Overcast makes (unused by routing daemons)
_HOST_TAG = re.compile(r"[A-Za-z0-9_.]{1,40}")


def host_tag(host: str) -> str:
    """The host's part of its router namespaces' names: the host name when
    it is short and plain, else 12 hex characters of its SHA-256."""
    if _HOST_TAG.fullmatch(host):
        return host
    return hashlib.sha256(host.encode()).hexdigest()[:12]


def router_netns(router_id: str, host: str) -> str:
    """``ocr-<11 of the router id>-<host tag>``: unique per host even when
    several hosts share one ``/run/netns`` (the lab)."""
    return f"{ROUTER_NETNS_PREFIX}{_short(router_id)}-{host_tag(host)}"


def is_router_netns(name: str, host: str) -> bool:
    """True for the name of one of ``host``'s router namespaces."""
    head = ROUTER_NETNS_PREFIX
    tail = f"-{host_tag(host)}"
    middle = name[len(head):len(name) - len(tail)]
    return (name.startswith(head) and name.endswith(tail) and 0 < len(middle) <= ID_CHARS
            and middle.isalnum())


def router_mark(router_id: str) -> str:
    """The mark of a router's namespace (its ``lo``'s ifalias)."""
    return f"{ROUTER_MARK_PREFIX}{router_id}"


def is_floating_address(dev: str, cidr: str) -> bool:
    """Whether ``cidr`` on router device ``dev`` is a floating IP: any address
    of the floating IPs' ``qf-`` device, a /32 of the gateway's ``qg-``
    device (a floating IP with port forwardings, on the SNAT host)."""
    return dev.startswith(ROUTER_FIP_PREFIX) or (dev.startswith(ROUTER_GW_PREFIX)
                                                 and cidr.endswith("/32"))


def router_of_mark(mark: str) -> str | None:
    return mark[len(ROUTER_MARK_PREFIX):] if mark.startswith(ROUTER_MARK_PREFIX) else None


def router_port_name(port_id: str) -> str:
    """The host side of a router interface's veth pair."""
    return ROUTER_PORT_PREFIX + _short(port_id)


def router_if_name(port_id: str, prefix: str = ROUTER_IF_PREFIX) -> str:
    """A router's device inside its namespace: ``qr-`` (or another of
    ``ROUTER_IF_PREFIXES``) + 11 of the port id."""
    return prefix + _short(port_id)


def router_port_mark(port_id: str) -> str:
    return f"{MARK_PREFIX}router-port:{port_id}"


# --- QoS (the qos and dscp subsystems, docs/qos.md) ---
QOS_IFB_PREFIX = "ocf"  # a port's ifb device: what the VM sends is shaped on its egress
QOS_MARK_PREFIX = f"{MARK_PREFIX}qos:"
# the major of every qdisc and class handle Overcast makes ("4f43:" — "OC"): a root
# qdisc with another handle is not ours and is never touched
QOS_MAJOR = 0x4F43
QOS_CLASS_MINOR = 1  # the one htb class of a shaped device, its qdisc's default
QOS_FILTER_PRIO = 0x4F43  # the priority of Overcast's redirect filter on a tap's ingress
QOS_TABLE = f"{NFT_TABLE_PREFIX}_qos"  # ``table bridge overcast_qos``: DSCP marks
QOS_TABLE_MARK = f"{MARK_PREFIX}qos"


def qos_ifb_name(port_id: str) -> str:
    return QOS_IFB_PREFIX + port_id[:ID_CHARS]


def qos_mark(port_id: str) -> str:
    return f"{QOS_MARK_PREFIX}{port_id}"


def is_qos_ifb(name: str, alias: str | None) -> bool:
    """An ifb device of Overcast's: its name AND its mark."""
    return name.startswith(QOS_IFB_PREFIX) and (alias or "").startswith(QOS_MARK_PREFIX)
