"""Where each kind of data lives in the store.  One writer per kind:

* ``/oc/obj/<kind>/<id>``       logical objects (JSON of ``Resource.to_stored``) — API
* ``/oc/ipam/<subnet>/<ip>``    IP allocations, value = port id            — API
* ``/oc/mac/<mac>``             MAC allocations, value = port id           — API
* ``/oc/seg/<type>/<id>``       segment id allocations, value = network id — API
* ``/oc/binding/<port>/<host>`` port bindings (PortBinding)                — API
* ``/oc/host/<name>``           host registration (Host)                   — agent
* ``/oc/alive/<name>``          liveness, attached to the agent's lease     — agent
* ``/oc/status/port/<id>``      port status {"status", "host", "reason"?, "firewall"?} — agent
* ``/oc/status/trunk/<id>``     trunk status {"status", "host", "reason"?} — agent
* ``/oc/counters/firewall/<host>`` per-rule hits {"host", "rules": {id: [packets, bytes]}} — agent
* ``/oc/boot/<port>``           a port's last DHCP boot or release {"host", "event", "at"} — agent
* ``/oc/public/<port>``         a port's dynamic public binding {"hostname", "address"?, "floatingip_id"?, "problem"?} — public-dns
* ``/oc/idx/<kind>/<attr>/<value>/<id>``  secondary index entries (empty values) — API
* ``/oc/meta/index``            version of the index layout the entries follow — API
* ``/oc/quota/<project>``       a project's quota limits that differ from the defaults {resource: limit} — API
* ``/oc/usage/<project>/<kind>`` how many objects of a counted kind the project has (a decimal) — API
* ``/oc/meta/default-sg-template`` the security group rule template was made — API

Secondary indexes let a request read "the subnets of network N" as one small
range instead of every subnet: the API writes an entry for each non-empty
value of an attribute in ``INDEXED`` in the same transaction as the object
(``list.field``: one for each item's field, as a trunk's subports' ports).
Usage counters do the same for quotas: one key per project and ``COUNTED``
kind, changed in the transaction that makes or removes the object, so a
create checks its quota with one read instead of counting the project's objects.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

ROOT = "/oc/"
OBJ = ROOT + "obj/"
IPAM = ROOT + "ipam/"
MAC = ROOT + "mac/"
SEG = ROOT + "seg/"
BINDING = ROOT + "binding/"
HOST = ROOT + "host/"
ALIVE = ROOT + "alive/"
PORT_STATUS = ROOT + "status/port/"
TRUNK_STATUS = ROOT + "status/trunk/"
FIREWALL_COUNTERS = ROOT + "counters/firewall/"
METERING_COUNTERS = ROOT + "counters/metering/"
BOOT = ROOT + "boot/"
PUBLIC = ROOT + "public/"
IDX = ROOT + "idx/"
INDEX_META = ROOT + "meta/index"
# 2: with the usage counters; 3: subnet pools counted; 4: RBAC policies; 5: trunk subports
INDEX_VERSION = "5"
QUOTA = ROOT + "quota/"
USAGE = ROOT + "usage/"
DEFAULT_SG_TEMPLATE = ROOT + "meta/default-sg-template"  # set once the template was made

# kind -> attributes with a secondary index
INDEXED: dict[str, tuple[str, ...]] = {
    "subnet": ("network_id", "subnetpool_id"),
    "port": ("network_id", "device_id"),
    "security_group": ("project_id",),
    "security_group_rule": ("security_group_id",),
    "port_forwarding": ("floatingip_id", "internal_port_id"),
    "trunk": ("port_id", "sub_ports.port_id"),
    "rbac_policy": ("object_id", "target_tenant"),
}

# kinds whose objects each project's usage counters count (Neutron's quota resources)
COUNTED = ("network", "subnet", "port", "router", "floatingip", "security_group", "subnetpool",
           "security_group_rule", "rbac_policy")


def obj(kind: str, id_: str = "") -> str:
    """Key of one object, or with no id the prefix of all objects of a kind."""
    return f"{OBJ}{kind}/{id_}"


def ipam(subnet_id: str, ip: str = "") -> str:
    return f"{IPAM}{subnet_id}/{ip}"


def mac(mac_address: str) -> str:
    return f"{MAC}{mac_address.lower()}"


def segment(network_type: str, seg_id: int | str = "") -> str:
    return f"{SEG}{network_type}/{seg_id}"


def binding(port_id: str, host: str = "") -> str:
    return f"{BINDING}{port_id}/{host}"


def host(name: str = "") -> str:
    return f"{HOST}{name}"


def alive(name: str = "") -> str:
    return f"{ALIVE}{name}"


def port_status(port_id: str = "") -> str:
    return f"{PORT_STATUS}{port_id}"


def trunk_status(trunk_id: str = "") -> str:
    """A trunk's status as its parent port's host realizes it, or the prefix of all."""
    return f"{TRUNK_STATUS}{trunk_id}"


def firewall_counters(host: str = "") -> str:
    """One host's security group rule counters, or with no host the prefix of all."""
    return f"{FIREWALL_COUNTERS}{host}"


def metering_counters(host: str = "") -> str:
    """One host's metering rule counters (what its routers counted, since
    the rules were made), or with no host the prefix of all."""
    return f"{METERING_COUNTERS}{host}"


def boot(port_id: str = "") -> str:
    """A port's last DHCP boot or release as its host saw it, or the prefix of all."""
    return f"{BOOT}{port_id}"


def public(port_id: str = "") -> str:
    """A port's dynamic public binding as the binder keeps it, or the prefix of all."""
    return f"{PUBLIC}{port_id}"


def index_values(item: Any, attr: str) -> frozenset[str]:
    """The values an object (or its stored dict) has for an ``INDEXED``
    attribute: its value, or for ``list.field`` each item's; non-empty strings."""
    head, _, field = attr.partition(".")
    value = _field(item, head)
    values = [_field(i, field) for i in value or ()] if field else [value]
    return frozenset(v for v in values if isinstance(v, str) and v)


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def index(kind: str, attr: str, value: str, id_: str = "") -> str:
    """One index entry, or with no id the prefix of the entries for ``value``."""
    return f"{IDX}{kind}/{attr}/{quote(value, safe='')}/{id_}"


def quota(project_id: str = "") -> str:
    """A project's quota limits, or with no project the prefix of all."""
    return f"{QUOTA}{quote(project_id, safe='')}"


def usage(project_id: str, kind: str = "") -> str:
    """A project's count of one kind, or with no kind the prefix of its counts."""
    return f"{USAGE}{quote(project_id, safe='')}/{kind}"
