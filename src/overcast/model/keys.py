"""Where each kind of data lives in the store.  One writer per kind:

* ``/oc/obj/<kind>/<id>``       logical objects (JSON of ``Resource.to_stored``) — API
* ``/oc/ipam/<subnet>/<ip>``    IP allocations, value = port id            — API
* ``/oc/mac/<mac>``             MAC allocations, value = port id           — API
* ``/oc/seg/<type>/<id>``       segment id allocations, value = network id — API
* ``/oc/binding/<port>/<host>`` port bindings (PortBinding)                — API
* ``/oc/host/<name>``           host registration (Host)                   — agent
* ``/oc/alive/<name>``          liveness, attached to the agent's lease     — agent
* ``/oc/status/port/<id>``      port status {"status", "host", "reason"?}  — agent
"""

from __future__ import annotations

ROOT = "/oc/"
OBJ = ROOT + "obj/"
IPAM = ROOT + "ipam/"
MAC = ROOT + "mac/"
SEG = ROOT + "seg/"
BINDING = ROOT + "binding/"
HOST = ROOT + "host/"
ALIVE = ROOT + "alive/"
PORT_STATUS = ROOT + "status/port/"


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
