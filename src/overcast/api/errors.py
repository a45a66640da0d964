"""Errors in the Neutron shape: {"NeutronError": {"type", "message", "detail"}}."""

from __future__ import annotations

from overcast.model.problems import ModelError

STATUS_BY_KIND = {
    "invalid": 400,
    "conflict": 409,
    "in_use": 409,
    "exhausted": 409,
    "not_found": 404,
}
TYPE_BY_KIND = {
    "invalid": "HTTPBadRequest",
    "conflict": "Conflict",
    "in_use": "InUse",
    "exhausted": "IpAddressGenerationFailure",
    "not_found": "NotFound",
}


class ApiError(Exception):
    status = 500
    type = "InternalError"

    def __init__(self, message: str, *, type: str | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        if type is not None:
            self.type = type

    def body(self) -> dict[str, dict[str, str]]:
        return {"NeutronError": {"type": self.type, "message": self.message,
                                 "detail": self.detail}}


class BadRequest(ApiError):
    status = 400
    type = "HTTPBadRequest"


class NotAuthenticated(ApiError):
    status = 401
    type = "NotAuthenticated"


class Forbidden(ApiError):
    status = 403
    type = "PolicyNotAuthorized"


class NotFound(ApiError):
    status = 404
    type = "NotFound"


class MethodNotAllowed(ApiError):
    status = 405
    type = "HTTPMethodNotAllowed"


class Conflict(ApiError):
    status = 409
    type = "Conflict"


class PreconditionFailed(ApiError):
    status = 412
    type = "PreconditionFailed"


class TooLarge(ApiError):
    status = 413
    type = "RequestEntityTooLarge"


class HeadTooLarge(ApiError):  # only the HTTP edge answers it
    status = 431
    type = "RequestHeaderFieldsTooLarge"


class Unavailable(ApiError):  # only the HTTP edge answers it
    status = 503
    type = "ServiceUnavailable"


def from_model_error(err: ModelError, type_override: str | None = None) -> ApiError:
    kind = err.kind
    cls = {400: BadRequest, 404: NotFound, 409: Conflict}[STATUS_BY_KIND[kind]]
    message = "; ".join(f"Invalid input for {p.path}: {p.message}" if p.kind == "invalid"
                        else f"{p.path}: {p.message}" for p in err.problems)
    return cls(message, type=type_override or TYPE_BY_KIND[kind])


def not_found(kind: str, id_: str) -> NotFound:
    if kind == "rbac_policy":  # Neutron's: the type of a policy one may not see is unknown
        return NotFound(f"RBAC policy of type unknown with ID {id_} not found",
                        type="RbacPolicyNotFound")
    label = {"floatingip": "Floating IP", "qos_policy": "QoS policy",
             "security_group": "Security group", "security_group_rule": "Security group rule",
             "bandwidth_limit_rule": "Bandwidth limit rule", "host": "Agent",
              "address_group": "Address group", "subnetpool": "Subnet pool",
              "address_scope": "Address scope",
              "network_segment_range": "Network Segment Range",
              "default_security_group_rule": "Default Security Group rule",
              "port_forwarding": "Port Forwarding",
              "metering_label": "Metering label", "metering_label_rule": "Metering label rule",
              "log": "Log resource", "trunk": "Trunk",
              }.get(kind, kind.capitalize())
    type_ = "".join(part.capitalize() for part in kind.split("_")) + "NotFound"
    type_ = {"subnetpool": "SubnetPoolNotFound", "log": "LogResourceNotFound"}.get(kind, type_)
    return NotFound(f"{label} {id_} could not be found.", type=type_)
