"""The registry of kernel subsystems, in dependency order: what a later one
needs (an FDB entry needs its VXLAN device) is created before it and deleted
after it.  Adding a subsystem is one module here and one line below."""

from overcast.plan.subsystem import Subsystem
from overcast.plan.subsystems import (
    announce,
    dscp,
    fdb,
    firewall,
    links,
    qos,
    routers,
    uplink_qos,
)

SUBSYSTEMS: tuple[Subsystem, ...] = (
    routers.SUBSYSTEM,  # before links: an interface's veth pair exists before links attaches it
    links.SUBSYSTEM,
    fdb.SUBSYSTEM,
    firewall.SUBSYSTEM,  # after links: its elements name the ports that links attaches
    announce.SUBSYSTEM,  # after links: a floating IP's ARP goes out once its device is attached
    qos.SUBSYSTEM,  # tc on the taps (and their ifb devices)
    uplink_qos.SUBSYSTEM,  # minimum bandwidth: guaranteed shares of the host's uplink
    dscp.SUBSYSTEM,  # the DSCP marks' nftables table
)

__all__ = ["SUBSYSTEMS"]
