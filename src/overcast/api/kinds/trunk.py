"""Trunks (Neutron's trunk and trunk-details): a parent port whose VM sends
untagged frames for the parent and 802.1Q-tagged ones for each subport, with
the add_subports, remove_subports and get_subports actions.

Status (Neutron's DOWN, ACTIVE, DEGRADED, ERROR): what the parent port's host
reports (``/oc/status/trunk/<id>``), else DOWN; a trunk with subports whose
parent is bound to a host without 802.1Q VLAN devices is DEGRADED (the
parent's untagged traffic flows, the subports' tagged traffic cannot), and
``overcast:status_reason`` says why."""

from __future__ import annotations

import json
from typing import Any

from overcast.api import convert as cv
from overcast.api import policy
from overcast.api.auth import Context
from overcast.api.errors import BadRequest, Conflict, NotFound
from overcast.api.kinds import port_links, qos
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Schema, stored
from overcast.model import keys
from overcast.model.types import Host, Port, SubPort, Trunk

VLAN_IDS = (1, 4094)
SEGMENTATION_TYPES = ("vlan",)
MAX_SUBPORTS = 4094  # in one request: one per VLAN id at most


def _subport(value: Any, removing: bool = False) -> SubPort:
    """One subport of a request. A removal names the port alone or with both
    segmentation details, as a client echoing get_subports sends them, and
    removes by port: the details are not checked against the trunk's
    (Neutron's remove_subports, after validate_subports)."""
    if not isinstance(value, dict):
        raise ValueError(f"Invalid data format for subport: '{cv.show(value)}' is not a dict")
    # other keys are ignored, as Neutron's validate_subports does: a client may
    # send back a parent's trunk_details.sub_ports (with their mac_address)
    if value.get("port_id") is None:
        raise ValueError("A valid port UUID must be specified")
    port_id = cv.to_uuidish(value["port_id"])
    if removing and "segmentation_type" not in value and "segmentation_id" not in value:
        return SubPort(port_id)
    if not value.get("segmentation_type") or value.get("segmentation_id") is None:
        raise ValueError(f"Invalid subport details '{cv.show(value)}': missing segmentation "
                         "information. Must specify both segmentation_id and "
                         "segmentation_type")
    if removing:
        return SubPort(port_id)
    kind = value["segmentation_type"]
    if kind not in SEGMENTATION_TYPES:
        raise ValueError(f"Unknown segmentation_type '{cv.show(kind)}'")
    try:
        seg = cv.to_int(value["segmentation_id"])
    except ValueError:
        raise ValueError(f"Invalid subport details: segmentation_id "
                         f"'{cv.show(value['segmentation_id'])}' is not an integer") from None
    if not VLAN_IDS[0] <= seg <= VLAN_IDS[1]:
        raise ValueError(f"Segmentation ID '{seg}' is not in range")
    return SubPort(port_id, kind, seg)


def _subports(removing: bool = False) -> cv.Converter:
    def convert(value: Any) -> tuple[SubPort, ...]:
        if not isinstance(value, list):
            raise ValueError(f"'{cv.show(value)}' is not a list")
        if len(value) > MAX_SUBPORTS:
            raise ValueError(f"{len(value)} items exceed the limit of {MAX_SUBPORTS}")
        subs = tuple(_subport(v, removing) for v in value)
        _unique(subs, value if removing else None)
        return subs
    return convert


def _unique(subs: tuple[SubPort, ...], raw: list[dict[str, Any]] | None) -> None:
    """No port twice, no segmentation twice (Neutron's validate_subports, for
    a removal too); a removal's segmentation details are its ``raw`` ones,
    as given (only their presence is checked)."""
    ports: set[str] = set()
    segs: set[tuple[str, str]] = set()
    for n, sub in enumerate(subs):
        if sub.port_id in ports:
            raise ValueError(f"Non unique UUID for subport: '{sub.port_id}'")
        ports.add(sub.port_id)
        if raw is None:
            kind, seg = sub.segmentation_type, sub.segmentation_id
        elif len(raw[n]) > 1:
            kind, seg = raw[n]["segmentation_type"], raw[n]["segmentation_id"]
        else:
            continue
        key = (repr(kind), repr(seg))
        if key in segs:
            raise ValueError(f"Segmentation ID '{cv.show(seg)}' for '{sub.port_id}' is not "
                             "unique")
        segs.add(key)


def _render_subports(trunk: Trunk) -> list[dict[str, Any]]:
    return [{"segmentation_id": s.segmentation_id, "segmentation_type": s.segmentation_type,
             "port_id": s.port_id} for s in trunk.sub_ports]


def _extra(repo: Repo, trunk: Trunk, out: dict[str, Any]) -> None:
    out["sub_ports"] = _render_subports(trunk)
    out["status"], out["overcast:status_reason"] = status(repo, trunk)


SCHEMA = Schema(
    Trunk, "trunk", "trunks", "/v2.0/trunks",
    (
        Attr("port_id", "port_id", cv.to_uuidish, put=False, required=True),
        stored("admin_state_up", cv.to_bool),
        Attr("sub_ports", "sub_ports", _subports(), put=False),
        Attr("status", None, post=False, put=False),
        Attr("overcast:status_reason", None, post=False, put=False),
    ),
    extra=_extra,
)


def status(repo: Repo, trunk: Trunk, name_host: bool = True) -> tuple[str, str | None]:
    """The trunk's status and, when it is not what it should be, why (naming
    the parent's host unless ``name_host`` is false)."""
    parent = repo.get(Port, trunk.port_id)
    host = parent.binding_host_id if parent is not None else ""
    if not host:
        return "DOWN", None
    reported = _reported(repo, trunk.id)
    if reported is not None and reported.get("host") == host:
        return str(reported["status"]), reported.get("reason")
    # hosts are the agents' to write: read untracked, as port statuses are
    record = next((h for h in repo.peek_all(Host) if h.host == host), None)
    lacks = record is not None and not qos.has_feature(record.features, "vlan")
    if lacks and trunk.sub_ports:
        where = f"host {host}" if name_host else "the parent port's host"
        return "DEGRADED", (f"802.1Q VLAN devices are not available on {where} (its kernel "
                            "has no 8021q): the parent port's untagged traffic can flow, the "
                            "subports' tagged traffic cannot")
    return "DOWN", None


def _reported(repo: Repo, trunk_id: str) -> dict[str, Any] | None:
    raw = repo.tx.get(keys.trunk_status(trunk_id), track=False)  # the agent's, read untracked
    try:
        value = json.loads(raw) if raw is not None else None
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) and isinstance(value.get("status"), str) else None


# checks --------------------------------------------------------------------------
def _visible_port(repo: Repo, ctx: Context, port_id: str) -> Port:
    return repo.must(Port, port_id, policy.visible(ctx, "port"))


def _check_parent(repo: Repo, ctx: Context, port_id: str) -> None:
    _visible_port(repo, ctx, port_id)
    if port_links.trunk_of_subport(repo, port_id) is not None:
        raise Conflict(f"Port {port_id} is in use by another trunk.", type="TrunkPortInUse")
    if port_links.trunk_of_parent(repo, port_id) is not None:
        raise Conflict(f"Port {port_id} is currently in use and is not eligible for use as a "
                       "parent port.", type="ParentPortInUse")


def _check_subports(repo: Repo, ctx: Context, trunk: Trunk, subs: tuple[SubPort, ...]) -> None:
    """Each new subport: a port the caller may see, not the parent, in no
    trunk, with no device; its VLAN id free on the trunk (Neutron's
    SubPortsValidator)."""
    taken = {(s.segmentation_type, s.segmentation_id) for s in trunk.sub_ports}
    for sub in subs:
        if sub.port_id == trunk.port_id:
            raise Conflict(f"Port {sub.port_id} is currently in use and is not eligible for use "
                           "as a parent port.", type="ParentPortInUse")
        port = _visible_port(repo, ctx, sub.port_id)
        if (port_links.trunk_of_subport(repo, sub.port_id) is not None
                or port_links.trunk_of_parent(repo, sub.port_id) is not None):
            raise Conflict(f"Port {sub.port_id} is in use by another trunk.",
                           type="TrunkPortInUse")
        if port.device_id:
            raise Conflict(f"Unable to complete operation on port {port.id} for network "
                           f"{port.network_id}. Port already has an attached device "
                           f"{port.device_id}.", type="PortInUse")
        if (sub.segmentation_type, sub.segmentation_id) in taken:
            raise Conflict(f"segmentation_type {sub.segmentation_type} and segmentation_id "
                           f"{sub.segmentation_id} already in use on trunk {trunk.id}.",
                           type="DuplicateSubPort")


def managed(trunk: Trunk) -> None:
    """Neutron's trunk_can_be_managed: not while the trunk is disabled."""
    if not trunk.admin_state_up:
        raise Conflict(f"Trunk {trunk.id} is currently disabled.", type="TrunkDisabled")


# the kind's work -----------------------------------------------------------------
def create(repo: Repo, ctx: Context, fields: dict[str, Any]) -> Trunk:
    _check_parent(repo, ctx, fields["port_id"])
    trunk = Trunk(**fields)
    _check_subports(repo, ctx, trunk.replace(sub_ports=()), trunk.sub_ports)
    return repo.save(trunk, new=True)


def update(repo: Repo, ctx: Context, trunk: Trunk, fields: dict[str, Any]) -> Trunk:
    return repo.save(trunk.replace(**fields))


def delete(repo: Repo, ctx: Context, trunk: Trunk) -> None:
    managed(trunk)
    repo.remove(trunk)


def requested(body: Any, removing: bool) -> tuple[SubPort, ...]:
    """The ``{"sub_ports": [...]}`` body of an action, or a 400."""
    if not isinstance(body, dict) or set(body) != {"sub_ports"}:
        raise BadRequest("The body of a trunk action must be {\"sub_ports\": [...]}")
    try:
        subs: tuple[SubPort, ...] = _subports(removing)(body["sub_ports"])
    except ValueError as err:
        raise BadRequest(f"Invalid input for operation: {err}.", type="InvalidInput") from None
    return subs


def add_subports(repo: Repo, ctx: Context, trunk: Trunk, subs: tuple[SubPort, ...]) -> Trunk:
    managed(trunk)
    _check_subports(repo, ctx, trunk, subs)
    return repo.save(trunk.replace(sub_ports=(*trunk.sub_ports, *subs)))


def remove_subports(repo: Repo, ctx: Context, trunk: Trunk,
                    subs: tuple[SubPort, ...]) -> Trunk:
    managed(trunk)
    present = {s.port_id for s in trunk.sub_ports}
    for sub in subs:
        if sub.port_id not in present:
            raise NotFound(f"SubPort {sub.port_id} on trunk {trunk.id} could not be found.",
                           type="SubPortNotFound")
    gone = {s.port_id for s in subs}
    return repo.save(trunk.replace(sub_ports=tuple(s for s in trunk.sub_ports
                                                   if s.port_id not in gone)))


def subports_body(trunk: Trunk) -> dict[str, Any]:
    return {"sub_ports": _render_subports(trunk)}
