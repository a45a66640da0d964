"""Ports: addresses (see ``allocation``), security groups, binding attributes, status
from agents."""

from __future__ import annotations

import json
import re
from typing import Any

from overcast.api import allocation, bindings
from overcast.api import convert as cv
from overcast.api.auth import Context
from overcast.api.errors import BadRequest, Conflict, Forbidden
from overcast.api.kinds import port_links, qos, security
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Schema, stored
from overcast.model import keys, validate
from overcast.model.problems import ModelError
from overcast.model.types import (
    AddressPair,
    ExtraDhcpOpt,
    FloatingIP,
    Host,
    Network,
    Port,
    Router,
    SecurityGroup,
    Subnet,
    Trunk,
)
from overcast.services import dhcp

_fixed_ip = cv.dict_of({"subnet_id": cv.to_uuidish, "ip_address": cv.to_ip})
_pair = cv.dict_of({"ip_address": cv.to_ip_or_cidr, "mac_address": cv.to_mac}, ("ip_address",))
MAX_ADDRESS_PAIRS = 10  # Neutron's max_allowed_address_pair
PROTECTED_OWNERS = ("network:router_interface", "network:router_gateway", "network:floatingip",
                    "network:router_centralized_snat")
ROUTER_DEVICES = "network:router"  # device_owner prefix of every router port (Neutron's too)


def _pairs(value: Any) -> tuple[AddressPair, ...]:
    return tuple(AddressPair(p["ip_address"], p.get("mac_address", ""))
                 for p in cv.list_of(_pair, MAX_ADDRESS_PAIRS)(value))


MAX_EXTRA_DHCP_OPTS = 50


_DNS_LABEL = re.compile(r"([a-z0-9-]{1,63}|<project_id>|<project_name>|<user_name>|<user_id>)")


def _dns_domain(value: Any) -> str:
    """neutron-lib's validate_dns_domain: empty, or an FQDN (a final dot) of
    lower-case labels that neither start nor end with a hyphen."""
    text = str(cv.to_str(255)(value))
    if not text:
        return text
    if not text.endswith("."):
        raise ValueError(f"'{text}' is not a FQDN")
    labels = text[:-1].split(".")
    for i, label in enumerate(labels):
        why = ("Encountered an empty component" if not label else
               f"Name '{label}' must not start or end with a hyphen"
               if label.startswith("-") or label.endswith("-") else
               f"Name '{label}' must be 1-63 characters long, each of which can only be "
               "alphanumeric or a hyphen" if not _DNS_LABEL.fullmatch(label) else
               f"TLD '{label}' must not be all numeric"
               if i == len(labels) - 1 > 0 and label.isdigit() else "")
        if why:
            raise ValueError(f"'{text}' not a valid PQDN or FQDN. Reason: {why}")
    if len(text) > 253:
        raise ValueError(f"'{text}' contains {len(text)} characters. Adding a sub-domain will "
                         "cause it to exceed the maximum length of a FQDN of '255'")
    return text


def _group_ids(value: Any) -> tuple[str, ...]:
    """neutron-lib's uuid_list: the same group twice is refused, not merged."""
    ids = tuple(cv.list_of(cv.to_uuidish)(value))
    dups = list(dict.fromkeys(i for i in ids if ids.count(i) > 1))
    if dups:
        raise ValueError(f"Duplicate items in the list: '{', '.join(dups)}'")
    return ids


def _opt_value(value: Any) -> str | None:
    return None if value is None else cv.to_str(255)(value)


_extra_opt = cv.dict_of({"opt_name": cv.to_str(64), "opt_value": _opt_value,
                         "ip_version": cv.one_of(4, 6, "4", "6")}, ("opt_name", "opt_value"))


def _extra_opts(value: Any) -> tuple[ExtraDhcpOpt, ...]:
    """Neutron's extra_dhcp_opts: each option by dnsmasq name or number,
    checked by the DHCP server's own encoder (``services.dhcp``), so what is
    stored is what a lease can carry."""
    opts = cv.list_of(_extra_opt, MAX_EXTRA_DHCP_OPTS)(value)
    problems = dhcp.check_extra_dhcp_opts(opts)
    if problems:
        raise ValueError("; ".join(problems))
    return tuple(ExtraDhcpOpt(o["opt_name"], o.get("opt_value"), int(o.get("ip_version", 4)))
                 for o in opts)


def _merged_opts(old: tuple[ExtraDhcpOpt, ...],
                 new: tuple[ExtraDhcpOpt, ...]) -> tuple[ExtraDhcpOpt, ...]:
    """An update changes the options it names (by name and IP version) and
    keeps the others; a null value removes the option, as in Neutron."""
    by_key = {(o.opt_name, o.ip_version): o for o in old}
    for o in new:
        by_key[(o.opt_name, o.ip_version)] = o
    return tuple(o for o in by_key.values() if o.opt_value is not None)


_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def _public_hostname(value: Any) -> str:
    """A fully qualified name (the public zone's: ``www.cloud.example``), or
    "" for none; labels of letters, digits and hyphens."""
    text = str(cv.to_str(253)(value)).rstrip(".").lower()
    if text and (text.count(".") < 1 or not all(_LABEL.fullmatch(p) for p in text.split("."))):
        raise ValueError(f"'{value}' is not a fully qualified host name (e.g. www.cloud.example)")
    return text


SCHEMA = Schema(
    Port, "port", "ports", "/v2.0/ports",
    (
        Attr("network_id", "network_id", cv.to_uuidish, put=False, required=True),
        Attr("mac_address", "mac_address", cv.to_mac),
        Attr("fixed_ips", None),  # parsed by hand: requests differ from the stored shape
        stored("device_id", cv.to_str(255)),
        stored("device_owner", cv.to_str(255)),
        stored("admin_state_up", cv.to_bool),
        Attr("status", None, post=False, put=False),
        # where a port runs is the operator's business (``policy``: admin only)
        Attr("binding:host_id", "binding_host_id", cv.to_str(255)),
        Attr("binding:vnic_type", "binding_vnic_type", bindings.to_vnic_type),
        Attr("binding:profile", "binding_profile", cv.to_dict),
        Attr("binding:vif_type", None, post=False, put=False),
        Attr("binding:vif_details", None, post=False, put=False),
        Attr("security_groups", "security_groups", _group_ids),
        stored("port_security_enabled", cv.to_bool),
        Attr("allowed_address_pairs", "allowed_address_pairs", _pairs),
        stored("dns_name", cv.to_str(255)),
        stored("dns_domain", _dns_domain),
        Attr("qos_policy_id", "qos_policy_id", cv.optional(cv.to_uuidish)),
        Attr("extra_dhcp_opts", "extra_dhcp_opts", _extra_opts),
        Attr("overcast:public_hostname", "public_hostname", _public_hostname),
    ),
    extra=lambda repo, port, out: _render_extra(repo, port, out),
)


def parse(ctx: Context, body: Any, creating: bool) -> dict[str, Any]:
    body = dict(body) if isinstance(body, dict) else body
    raw_ips = body.pop("fixed_ips", None) if isinstance(body, dict) else None
    has_ips = isinstance(body, dict) and raw_ips is not None
    fields = SCHEMA.parse(ctx, body, creating)
    if has_ips:
        try:
            fields["_fixed_ips"] = cv.list_of(_fixed_ip)(raw_ips)
        except ValueError as err:
            raise BadRequest(f"Invalid input for fixed_ips. Reason: {err}.") from None
    return fields


# What agents write (status, hosts) is read untracked: a write transaction
# that renders a port must not conflict with an agent's status or heartbeat.
def _statuses(repo: Repo) -> dict[str, Any]:
    return {kv.key.rsplit("/", 1)[1]: _status_value(kv.value)
            for kv in repo.peek(keys.port_status())}


def _status_value(raw: bytes | None) -> dict[str, Any] | None:
    """A port status value as its agent writes it (``{"status", "host", ...}``
    with strings for both), else None: a value that is not is no status."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not (isinstance(value, dict) and isinstance(value.get("status"), str)
            and isinstance(value.get("host"), str)):
        return None
    return value


def realized(repo: Repo, port: Port) -> dict[str, Any] | None:
    """The status its agent wrote for ``port``, when it still holds: by the
    host the port is bound to; an unbound router or floating IP port's by
    whichever agent reports it.  None: no status that holds (DOWN)."""
    if repo.bulk:
        statuses: dict[str, Any] = repo.memo("port_status", lambda: _statuses(repo))
        status = statuses.get(port.id)
    else:
        status = _status_value(repo.tx.get(keys.port_status(port.id), track=False))
    bound = port.binding_host_id
    if bound and not (status and status["host"] == bound):
        return None  # a status of another host (before a rebinding) is stale
    if not bound and not port.device_owner.startswith((ROUTER_DEVICES, "network:floatingip")):
        return None  # an unbound port has no host to be ACTIVE on (a router's: its agent's)
    return status


def _render_extra(repo: Repo, port: Port, out: dict[str, Any]) -> None:
    port_links.trunk_details(repo, port, out)
    if "trunk_details" in out:  # a trunk's parent says what its trunk's status says is wrong
        from overcast.api.kinds import trunk as trunks  # (trunk imports this module's peers)

        found = repo.get(Trunk, out["trunk_details"]["trunk_id"])
        # (without the host's name: binding:host_id is an admin's to read)
        why = trunks.status(repo, found, name_host=False)[1] if found is not None else None
        if why:
            out["overcast:trunk_status_reason"] = why
    status = realized(repo, port)
    hosts: set[str] = repo.memo("hosts", lambda: known_hosts(repo))
    out["fixed_ips"] = [{"subnet_id": f.subnet_id, "ip_address": f.ip_address}
                        for f in port.fixed_ips]
    out["allowed_address_pairs"] = [  # a pair stored without a MAC has the port's
        {"ip_address": p.ip_address, "mac_address": p.mac_address or port.mac_address}
        for p in port.allowed_address_pairs]
    bound = port.binding_host_id
    out["status"] = status["status"] if status else "DOWN"
    if not bound:
        out["binding:vif_type"] = "unbound"
    else:
        out["binding:vif_type"] = "tap" if bound in hosts else "binding_failed"
    out["binding:vif_details"] = {"port_filter": True, "connectivity": "l2"} if bound else {}
    out["dns_assignment"] = _dns_assignment(repo, port)
    out["extra_dhcp_opts"] = [{"opt_name": o.opt_name, "opt_value": o.opt_value,
                               "ip_version": o.ip_version} for o in port.extra_dhcp_opts]
    out["qos_network_policy_id"] = _network_policy(repo, port)
    out["propagate_uplink_status"] = False
    out["resource_request"] = None
    out["data_plane_status"] = None
    out["overcast:firewall"] = _enforced(status)
    out["overcast:qos"] = _qos_enforced(status)
    out["overcast:public_binding"] = _public_binding(repo, port)


def _network_policy(repo: Repo, port: Port) -> str | None:
    """Neutron's qos-port-network-policy: the QoS policy of the port's network."""
    net = repo.get(Network, port.network_id)
    return net.qos_policy_id if net is not None else None


def _public_binding(repo: Repo, port: Port) -> dict[str, Any] | None:
    """The binder's word on the port's public name (``keys.public``): its
    address while the VM runs, or why it has none; None without a name."""
    if not port.public_hostname:
        return None
    raw = repo.tx.get(keys.public(port.id), track=False)
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        value = {}
    out: dict[str, Any] = {"hostname": port.public_hostname,
                           "address": value.get("address") if isinstance(value, dict) else None}
    if isinstance(value, dict) and isinstance(value.get("problem"), str):
        out["problem"] = value["problem"]
    return out


def _enforced(status: dict[str, Any] | None) -> list[dict[str, Any]]:
    """What the port's host enforces for it: one entry, from the ACTIVE
    status its agent writes with the firewall on (``status`` is already the
    bound host's).  A firewall value not of the shape the agent writes
    (port_security a bool, security_groups and not_enforced lists of
    strings) shows nothing: it is no statement of what is enforced."""
    fw = status.get("firewall") if status and status["status"] == "ACTIVE" else None
    if not isinstance(fw, dict) or not isinstance(fw.get("port_security"), bool):
        return []
    groups, why = _strings(fw.get("security_groups")), _strings(fw.get("not_enforced", []))
    if groups is None or why is None:
        return []
    entry = {"host": status["host"] if status else "", "port_security": fw["port_security"],
             "security_groups": groups}
    if why:
        entry["not_enforced"] = why
    return [entry]


def _qos_enforced(status: dict[str, Any] | None) -> list[dict[str, Any]]:
    """What the port's host enforces of its QoS policy: one entry, from the
    ACTIVE status its agent writes (``status`` is already the bound host's);
    a value not of the shape the agent writes shows nothing."""
    qos = status.get("qos") if status and status["status"] == "ACTIVE" else None
    if not isinstance(qos, dict) or not isinstance(qos.get("policy_id"), str):
        return []
    entry: dict[str, Any] = {"host": status["host"] if status else "",
                             "policy_id": qos["policy_id"]}
    for direction in ("egress", "ingress"):
        limit = qos.get(direction)
        if isinstance(limit, dict) and isinstance(limit.get("max_kbps"), int):
            entry[direction] = {k: limit[k] for k in ("max_kbps", "max_burst_kbps", "device")
                                if k in limit}
    if isinstance(qos.get("dscp_mark"), int):
        entry["dscp_mark"] = qos["dscp_mark"]
    minimum = qos.get("minimum")
    if isinstance(minimum, dict) and isinstance(minimum.get("min_kbps"), int):
        entry["minimum"] = {k: minimum[k] for k in ("min_kbps", "device") if k in minimum}
    why = _strings(qos.get("not_enforced", []))
    if why:
        entry["not_enforced"] = why
    return [entry]


def _strings(value: Any) -> list[str] | None:
    """``value`` if it is a list of strings, else None."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _dns_assignment(repo: Repo, port: Port) -> list[dict[str, str]]:
    net = repo.get(Network, port.network_id)
    domain = (net.dns_domain if net and net.dns_domain else repo.cfg.dns_domain).rstrip(".") + "."
    out = []
    for fip in port.fixed_ips:
        host = port.dns_name or "host-" + fip.ip_address.replace(".", "-").replace(":", "-")
        out.append({"hostname": host, "ip_address": fip.ip_address, "fqdn": f"{host}.{domain}"})
    return out


def known_hosts(repo: Repo) -> set[str]:
    return {h.host for h in repo.peek_all(Host)}


def create(repo: Repo, ctx: Context, fields: dict[str, Any]) -> Port:
    net = repo.must(Network, fields["network_id"])  # visible: the handler's policy checked
    requested = fields.pop("_fixed_ips", None)
    fields.setdefault("port_security_enabled", net.port_security_enabled)
    if "extra_dhcp_opts" in fields:
        fields["extra_dhcp_opts"] = _merged_opts((), fields["extra_dhcp_opts"])
    port = Port(**fields)
    port = port.replace(mac_address=allocation.take_mac(repo, port, port.mac_address or None))
    port = port.replace(fixed_ips=allocation.assign_ips(repo, port, net, requested))
    port = _own_mac_pairs(port)
    port = _apply_security(repo, ctx, port, "security_groups" in fields)
    _check(repo, port)
    _check_device(repo, ctx, port, None)
    if port.qos_policy_id is not None:
        qos.check_usable(repo, ctx, port.qos_policy_id)
    return repo.save(port, new=True)


def _own_mac_pairs(port: Port) -> Port:
    """As Neutron, a pair given without a MAC is stored with the port's own, and a
    pair twice in one request is refused, also when one of the two names the
    port's own MAC and the other none: Neutron's validator compares them as
    given, but its database then refuses the second pair filled in with the
    port's MAC, as DuplicateAddressPairInRequest too (allowedaddresspairs_db)."""
    pairs = tuple(AddressPair(p.ip_address, p.mac_address or port.mac_address)
                  for p in port.allowed_address_pairs)
    seen: set[tuple[str, str]] = set()
    for pair in pairs:
        key = (pair.ip_address, pair.mac_address.lower())
        if key in seen:
            raise BadRequest(f"Invalid input for allowed_address_pairs: request contains "
                             f"duplicate address pair: mac_address {pair.mac_address} "
                             f"ip_address {pair.ip_address}.",
                             type="DuplicateAddressPairInRequest")
        seen.add(key)
    return port.replace(allowed_address_pairs=pairs)


def _apply_security(repo: Repo, ctx: Context, port: Port, explicit: bool,
                    groups_given: bool = True) -> Port:
    """``groups_given``: the request names the port's groups (Neutron checks
    their mix only then: a port stored with both kinds can still be renamed)."""
    if not explicit and port.port_security_enabled and not port.device_owner.startswith("network:"):
        port = port.replace(security_groups=(security.ensure_default(repo, port.project_id).id,))
    visible = security.GROUP_SCHEMA.visible(ctx, repo)
    groups = [repo.must(SecurityGroup, sg, visible) for sg in port.security_groups]
    if groups_given and len({g.stateful for g in groups}) > 1:  # Neutron's _validate_sgs_for_port
        raise Conflict("Error Cannot apply both stateful and stateless security groups on the "
                       "same port at the same time while attempting the operation.",
                       type="SecurityGroupConflict")
    if not port.port_security_enabled and port.security_groups:
        raise Conflict("Port has security group associated. Cannot disable port security or "
                       "ip address until security group is removed", type="PortSecurityAndIPRequiredForSecurityGroups")
    if not port.port_security_enabled and port.allowed_address_pairs:
        raise Conflict("Port Security must be enabled in order to have allowed address pairs "
                       "on a port.", type="AddressPairAndPortSecurityRequired")
    return port


def _check(repo: Repo, port: Port) -> None:
    subnets = {s.id: s for s in repo.where(Subnet, network_id=port.network_id)}
    problems = validate.check_port(port, subnets)
    if problems:
        raise ModelError(problems)


def _check_device(repo: Repo, ctx: Context, port: Port, old: Port | None) -> None:
    """A port that says it belongs to a router (device_owner network:router_*)
    must name a router of the caller's own project: a device_id never attaches
    anything to another project's router (Neutron bug 1489111)."""
    if ctx.is_admin or not port.device_owner.startswith(ROUTER_DEVICES) or not port.device_id:
        return
    if old is not None and (old.device_owner, old.device_id) == (port.device_owner,
                                                                 port.device_id):
        return
    router = repo.get(Router, port.device_id)
    if router is None or router.project_id != ctx.project_id:
        raise Forbidden(f"The device_id {port.device_id} is not owned by your project or "
                        "matches another project's router.", type="DeviceIDNotOwnedByTenant")


def update(repo: Repo, ctx: Context, port: Port, fields: dict[str, Any]) -> Port:
    requested = fields.pop("_fixed_ips", None)
    if "extra_dhcp_opts" in fields:
        fields["extra_dhcp_opts"] = _merged_opts(port.extra_dhcp_opts, fields["extra_dhcp_opts"])
    new = port.replace(**fields)
    if "mac_address" in fields and new.mac_address != port.mac_address:
        if port.binding_host_id:
            raise Conflict(f"Port {port.id} is bound; its MAC address cannot change",
                           type="PortBound")
        allocation.release_mac(repo, port.mac_address)
        new = new.replace(mac_address=allocation.take_mac(repo, new, new.mac_address))
    if requested is not None:
        net = repo.must(Network, port.network_id)
        new = new.replace(fixed_ips=allocation.reassign_ips(repo, port, new, net, requested))
    if "allowed_address_pairs" in fields:
        new = _own_mac_pairs(new)
    new = _apply_security(repo, ctx, new, True, "security_groups" in fields)
    _check(repo, new)
    _check_device(repo, ctx, new, port)
    if new.qos_policy_id != port.qos_policy_id:
        qos.check_usable(repo, ctx, new.qos_policy_id)
    saved = repo.save(new)
    port_links.forget(repo, saved)
    return saved


def release(repo: Repo, port: Port) -> None:
    """Remove a port with everything it holds: addresses, MAC, bindings."""
    allocation.release_ips(repo, port.fixed_ips)
    allocation.release_mac(repo, port.mac_address)
    bindings.drop(repo, port.id)
    repo.remove(port)


def delete(repo: Repo, ctx: Context, port: Port) -> None:
    if port.device_owner in PROTECTED_OWNERS:
        raise Conflict(f"Port {port.id} cannot be deleted directly via the port API: has device "
                       f"owner {port.device_owner}.", type="ServicePortInUse")
    port_links.check_delete(repo, port)
    disassociate_floating_ips(repo, port.id)
    release(repo, port)
    port_links.forget(repo, port)


def disassociate_floating_ips(repo: Repo, port_id: str) -> None:
    """A port that goes away leaves its floating IPs unassociated."""
    for fip in repo.where(FloatingIP, port_id=port_id):
        repo.save(fip.replace(port_id=None, fixed_ip_address=None, router_id=None))
