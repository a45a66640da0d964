"""Port bindings (Neutron's ``binding-extended``): where a port runs.

A port has at most one ACTIVE binding, kept on the port itself
(``binding_host_id``, ``binding_vnic_type``, ``binding_profile``), and any
number of INACTIVE ones (a live migration's target) under
``keys.binding(port, host)``.  Activating one swaps it with the active one.
Bindings place ports on hosts, which is the operator's business: every path
below ``/v2.0/ports/{id}/bindings`` is for administrators only.
"""

from __future__ import annotations

from typing import Any

from overcast.api import convert as cv
from overcast.api import policy
from overcast.api.errors import BadRequest, Conflict, Forbidden, MethodNotAllowed, NotFound
from overcast.api.repo import Repo
from overcast.api.session import Call
from overcast.api.wire import Response
from overcast.model import keys
from overcast.model.types import Port, PortBinding

VNIC_TYPES = ("normal", "direct", "macvtap", "baremetal", "direct-physical",
              "virtio-forwarder", "smart-nic", "vdpa", "remote-managed")
to_vnic_type = cv.one_of(*VNIC_TYPES)


# what a port's bindings are ---------------------------------------------------
def view(b: PortBinding) -> dict[str, Any]:
    return {"host": b.host, "vnic_type": b.vnic_type, "profile": b.profile,
            "status": b.status, "vif_type": "tap",
            "vif_details": {"port_filter": True, "connectivity": "l2"}}


def of_port(repo: Repo, port: Port) -> list[PortBinding]:
    """Every binding of ``port``, the active one first."""
    out = [PortBinding.from_stored(v) for _, v in repo.range_json(keys.binding(port.id))]
    if port.binding_host_id:
        out.append(PortBinding(port.id, port.binding_host_id, "ACTIVE", port.binding_vnic_type,
                               dict(port.binding_profile)))
    return sorted(out, key=lambda b: (b.status != "ACTIVE", b.host))


def drop(repo: Repo, port_id: str) -> None:
    """The inactive bindings of a port that goes away."""
    for kv in repo.tx.range(keys.binding(port_id)):
        repo.delete_key(kv.key)


# changes, inside one transaction --------------------------------------------------
def create(repo: Repo, port: Port, body: Any) -> dict[str, Any]:
    """A new binding: ACTIVE if the port has none, else INACTIVE."""
    host = _host(body)
    if host in {b.host for b in of_port(repo, port)}:
        raise Conflict(f"Binding for port {port.id} on host {host} already exists.",
                       type="PortBindingAlreadyExists")
    vnic_type, profile = _details(body)
    binding = PortBinding(port.id, host, "INACTIVE" if port.binding_host_id else "ACTIVE",
                          vnic_type, profile)
    if binding.status == "ACTIVE":
        repo.save(port.replace(binding_host_id=host, binding_profile=profile))
    else:
        repo.put_json(keys.binding(port.id, host), binding.to_stored())
    return view(binding)


def _host(body: Any) -> str:
    if not isinstance(body, dict) or not isinstance(body.get("host"), str) or not body["host"]:
        raise BadRequest("Invalid input for binding: 'host' is required")
    unknown = set(body) - {"host", "vnic_type", "profile"}
    if unknown:
        raise BadRequest(f"Unrecognized attribute(s) '{', '.join(sorted(unknown))}'")
    try:
        return str(cv.to_str(255)(body["host"]))
    except ValueError as err:
        raise BadRequest(f"Invalid input for host. Reason: {err}.") from None


def _details(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    try:
        profile = cv.to_dict(body.get("profile"))
    except ValueError as err:
        raise BadRequest(f"Invalid input for profile. Reason: {err}.") from None
    try:
        vnic_type = to_vnic_type(body.get("vnic_type", "normal"))
    except ValueError as err:
        raise BadRequest(f"Invalid input for vnic_type. Reason: {err}.") from None
    return vnic_type, profile


def activate(repo: Repo, port: Port, host: str) -> dict[str, Any]:
    """The inactive binding on ``host`` becomes the active one; the active one, inactive."""
    stored = repo.get_json(keys.binding(port.id, host))
    if stored is None:
        if port.binding_host_id == host:
            raise Conflict(f"Binding for port {port.id} on host {host} is already active.",
                           type="PortBindingAlreadyActive")
        raise NotFound(f"Binding for port {port.id} for host {host} could not be found.",
                       type="PortBindingNotFound")
    new = PortBinding.from_stored(stored)
    repo.delete_key(keys.binding(port.id, host))
    if port.binding_host_id:
        old = PortBinding(port.id, port.binding_host_id, "INACTIVE", port.binding_vnic_type,
                          dict(port.binding_profile))
        repo.put_json(keys.binding(port.id, old.host), old.to_stored())
    repo.save(port.replace(binding_host_id=host, binding_vnic_type=new.vnic_type,
                           binding_profile=new.profile))
    return view(PortBinding(port.id, host, "ACTIVE", new.vnic_type, new.profile))


def delete(repo: Repo, port: Port, host: str) -> None:
    if repo.get_json(keys.binding(port.id, host)) is not None:
        repo.delete_key(keys.binding(port.id, host))
    elif port.binding_host_id == host:
        repo.save(port.replace(binding_host_id="", binding_profile={}))
    else:
        raise NotFound(f"Binding for port {port.id} for host {host} could not be found.",
                       type="PortBindingNotFound")


# route handlers ------------------------------------------------------------------
def _port(call: Call, repo: Repo) -> Port:
    return repo.must(Port, call.params["id"], policy.visible(call.ctx, "port", repo.get))


def _admin_only(call: Call) -> None:
    if not call.ctx.is_admin:
        _port(call, call.read())  # 404 for what the caller cannot see
        raise Forbidden(f"Port bindings of port {call.params['id']} are restricted to "
                        "administrators")


def handle_list(call: Call) -> Response:
    _admin_only(call)
    repo = call.read()
    return Response(200, {"bindings": [view(b) for b in of_port(repo, _port(call, repo))]})


def handle_create(call: Call) -> Response:
    _admin_only(call)
    body = call.member_body("binding")
    return Response(201, {"binding": call.write(lambda repo: create(repo, _port(call, repo),
                                                                    body))})


def handle_activate(call: Call) -> Response:
    _admin_only(call)
    host = call.params["host"]
    return Response(200, {"binding": call.write(lambda repo: activate(repo, _port(call, repo),
                                                                      host))})


def handle_delete(call: Call) -> Response:
    _admin_only(call)
    call.write(lambda repo: delete(repo, _port(call, repo), call.params["host"]))
    return Response(204)


def handle_other(call: Call) -> Response:
    """Any other method or path below bindings: still for administrators only."""
    _admin_only(call)
    raise MethodNotAllowed(f"{call.req.method} is not allowed on {call.req.path}")
