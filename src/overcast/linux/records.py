"""The kernel's vocabulary: frozen records of desired or observed kernel state.

Pure data, no I/O.  The planner produces these, the drivers observe and apply
them.  Every collection in :class:`KernelState` is a sorted tuple, so two
states that mean the same thing compare (and print) equal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

VXLAN_PORT = 4789

# Ownership (the names themselves are made in overcast.plan.names).
TAP_PREFIX = "tap"
BRIDGE_PREFIX = "ocb"
VXLAN_PREFIX = "ocx"
OWNED_PREFIXES = (BRIDGE_PREFIX, VXLAN_PREFIX)
MARK_PREFIX = "overcast:"


def is_owned(name: str, alias: str | None) -> bool:
    """True only for devices Overcast created: owned prefix AND our mark."""
    if not name.startswith(OWNED_PREFIXES) or not alias:
        return False
    return alias.startswith(MARK_PREFIX)


def is_workload(name: str) -> bool:
    """True for VM/container NICs (created by QEMU or the lab, not by us)."""
    return name.startswith(TAP_PREFIX)


@dataclass(frozen=True, slots=True, order=True)
class Bridge:
    """A Linux bridge owned by Overcast (one per tenant network per host)."""

    name: str
    mtu: int
    alias: str
    up: bool = True
    # IGMP/MLD snooping: off, so the bridge floods multicast as the VXLAN
    # head-end replication does (and, with it, never sends a query itself)
    mcast_snooping: bool = False
    ipv6: bool = False  # as on Attachment


@dataclass(frozen=True, slots=True, order=True)
class Vxlan:
    """A VXLAN device: one VNI, static FDB only (``learning`` off)."""

    name: str
    vni: int
    local_ip: str
    mtu: int
    alias: str
    port: int = VXLAN_PORT
    learning: bool = False
    up: bool = True

    def identity(self) -> tuple[int, str, int, bool]:
        """The attributes that cannot be changed in place (recreate instead)."""
        return (self.vni, self.local_ip, self.port, self.learning)


@dataclass(frozen=True, slots=True, order=True)
class Attachment:
    """Device ``ifname`` is a port of bridge ``master`` and is up.

    ``master == ""`` (observed only) means the device exists but is attached
    to nothing.  ``mtu is None`` (desired) means "leave the MTU alone".
    """

    ifname: str
    master: str
    mtu: int | None = None
    up: bool = True
    ipv6: bool = False  # IPv6 on the device (off: no MLD, RS or DAD into the tenant network)


@dataclass(frozen=True, slots=True, order=True)
class FdbEntry:
    """Static FDB entry on a VXLAN device: frames for ``mac`` go to ``dst``.

    ``mac == "00:00:00:00:00:00"`` is head-end replication (BUM traffic).
    """

    dev: str
    mac: str
    dst: str


BUM_MAC = "00:00:00:00:00:00"

Record = Bridge | Vxlan | Attachment | FdbEntry


def _sorted(items: Iterable[T]) -> tuple[T, ...]:
    return tuple(sorted(set(items)))  # type: ignore[type-var]


@dataclass(frozen=True, slots=True)
class KernelState:
    """Desired or observed state.  Build with :meth:`of` to get sorted tuples.

    ``devices_present`` (observed) names the workload devices (``tap*``) that
    exist; ``devices_up`` those of them that are administratively up.  In a
    desired state both are empty.
    """

    bridges: tuple[Bridge, ...] = ()
    vxlans: tuple[Vxlan, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    fdb: tuple[FdbEntry, ...] = ()
    devices_present: frozenset[str] = field(default_factory=frozenset)
    devices_up: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(
        cls,
        bridges: Iterable[Bridge] = (),
        vxlans: Iterable[Vxlan] = (),
        attachments: Iterable[Attachment] = (),
        fdb: Iterable[FdbEntry] = (),
        devices_present: Iterable[str] = (),
        devices_up: Iterable[str] = (),
    ) -> KernelState:
        return cls(
            bridges=_sorted(bridges),
            vxlans=_sorted(vxlans),
            attachments=_sorted(attachments),
            fdb=_sorted(fdb),
            devices_present=frozenset(devices_present),
            devices_up=frozenset(devices_up),
        )

    def objects(self) -> tuple[Record, ...]:
        return (*self.bridges, *self.vxlans, *self.attachments, *self.fdb)

    def without_devices(self) -> KernelState:
        """The same state with the device inventory dropped (for comparing
        an observed state with a desired one)."""
        return KernelState(self.bridges, self.vxlans, self.attachments, self.fdb)

    def render(self) -> str:
        """Normalized text, one object per line, sorted."""
        lines = [render_record(obj) for obj in self.objects()]
        lines += [f"device {name}" for name in sorted(self.devices_present)]
        return "\n".join(lines) + ("\n" if lines else "")


def render_record(obj: Record) -> str:
    """One normalized line for one object."""
    if isinstance(obj, Bridge):
        snooping = " mcast_snooping" if obj.mcast_snooping else ""
        return (f"bridge {obj.name} mtu {obj.mtu}{snooping}{_ipv6(obj.ipv6)} alias {obj.alias}"
                f"{_down(obj.up)}")
    if isinstance(obj, Vxlan):
        learning = " learning" if obj.learning else " nolearning"
        return (
            f"vxlan {obj.name} id {obj.vni} local {obj.local_ip} dstport {obj.port}"
            f" mtu {obj.mtu}{learning} alias {obj.alias}{_down(obj.up)}"
        )
    if isinstance(obj, Attachment):
        mtu = "" if obj.mtu is None else f" mtu {obj.mtu}"
        return f"attach {obj.ifname} master {obj.master or '-'}{mtu}{_ipv6(obj.ipv6)}{_down(obj.up)}"
    return f"fdb {obj.mac} dev {obj.dev} dst {obj.dst}"


def _ipv6(on: bool) -> str:
    return " ipv6" if on else ""


def _down(up: bool) -> str:
    return "" if up else " down"
