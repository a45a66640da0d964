"""Ports: MAC and IP allocation, security groups, bindings, status from agents."""

from __future__ import annotations

import ipaddress
from typing import Any

from overcast.api import convert as cv
from overcast.api.auth import Context
from overcast.api.config import ApiConfig
from overcast.api.errors import BadRequest, Conflict, Forbidden
from overcast.api.kinds import security
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Kind, stored
from overcast.model import ipam, keys, validate
from overcast.model.problems import ModelError
from overcast.model.types import (
    AddressPair,
    FixedIP,
    Host,
    Network,
    Port,
    QosPolicy,
    SecurityGroup,
    Subnet,
)

_fixed_ip = cv.dict_of({"subnet_id": cv.to_uuidish, "ip_address": cv.to_str(64)})
_pair = cv.dict_of({"ip_address": cv.to_str(64), "mac_address": cv.to_mac}, ("ip_address",))
PROTECTED_OWNERS = ("network:router_interface", "network:router_gateway", "network:floatingip")


VNIC_TYPES = ("normal", "direct", "macvtap", "baremetal", "direct-physical",
              "virtio-forwarder", "smart-nic", "vdpa", "remote-managed")
to_vnic_type = cv.one_of(*VNIC_TYPES)


def _pairs(value: Any) -> tuple[AddressPair, ...]:
    return tuple(AddressPair(p["ip_address"], p.get("mac_address", ""))
                 for p in cv.list_of(_pair)(value))


KIND = Kind(
    Port, "port", "ports", "/v2.0/ports",
    (
        Attr("network_id", "network_id", cv.to_uuidish, put=False, required=True),
        Attr("mac_address", "mac_address", cv.to_mac),
        Attr("fixed_ips", None),  # parsed by hand: requests differ from the stored shape
        stored("device_id", cv.to_str(255)),
        stored("device_owner", cv.to_str(255)),
        stored("admin_state_up", cv.to_bool),
        Attr("status", None, post=False, put=False),
        # where a port runs is the operator's business (Neutron: admin only)
        Attr("binding:host_id", "binding_host_id", cv.to_str(255), admin_only=True,
             admin_view=True),
        Attr("binding:vnic_type", "binding_vnic_type", to_vnic_type),
        Attr("binding:profile", "binding_profile", cv.to_dict, admin_only=True, admin_view=True),
        Attr("binding:vif_type", None, post=False, put=False, admin_view=True),
        Attr("binding:vif_details", None, post=False, put=False, admin_view=True),
        Attr("security_groups", "security_groups", cv.list_of(cv.to_uuidish)),
        stored("port_security_enabled", cv.to_bool),
        Attr("allowed_address_pairs", "allowed_address_pairs", _pairs),
        stored("dns_name", cv.to_str(255)),
        Attr("qos_policy_id", "qos_policy_id", cv.optional(cv.to_uuidish)),
    ),
    extra=lambda repo, port, out: _render_extra(repo, port, out),
)


def parse(ctx: Context, body: Any, creating: bool) -> dict[str, Any]:
    body = dict(body) if isinstance(body, dict) else body
    raw_ips = body.pop("fixed_ips", None) if isinstance(body, dict) else None
    has_ips = isinstance(body, dict) and raw_ips is not None
    fields = KIND.parse(ctx, body, creating)
    if has_ips:
        try:
            fields["_fixed_ips"] = cv.list_of(_fixed_ip)(raw_ips)
        except ValueError as err:
            raise BadRequest(f"Invalid input for fixed_ips. Reason: {err}.") from None
    return fields


def _statuses(repo: Repo) -> dict[str, Any]:
    return {k.rsplit("/", 1)[1]: v for k, v in repo.range_json(keys.port_status())}


def _render_extra(repo: Repo, port: Port, out: dict[str, Any]) -> None:
    if repo.bulk:
        statuses: dict[str, Any] = repo.memo("port_status", lambda: _statuses(repo))
    else:
        statuses = {port.id: repo.get_json(keys.port_status(port.id))}
    hosts: set[str] = repo.memo("hosts", lambda: known_hosts(repo))
    cfg: ApiConfig = repo.cfg or ApiConfig()
    out["fixed_ips"] = [{"subnet_id": f.subnet_id, "ip_address": f.ip_address}
                        for f in port.fixed_ips]
    status = statuses.get(port.id)
    bound = port.binding_host_id
    out["status"] = (status["status"] if status and status.get("host") == bound and bound
                     else "DOWN")
    if not bound:
        out["binding:vif_type"] = "unbound"
    else:
        out["binding:vif_type"] = "tap" if bound in hosts else "binding_failed"
    out["binding:vif_details"] = {"port_filter": True, "connectivity": "l2"} if bound else {}
    out["dns_assignment"] = _dns_assignment(repo, port, cfg)
    out["dns_domain"] = ""
    out["extra_dhcp_opts"] = []
    out["qos_network_policy_id"] = None
    out["propagate_uplink_status"] = False
    out["resource_request"] = None
    out["data_plane_status"] = None


def _dns_assignment(repo: Repo, port: Port, cfg: ApiConfig) -> list[dict[str, str]]:
    net = repo.get(Network, port.network_id)
    domain = (net.dns_domain if net and net.dns_domain else cfg.dns_domain).rstrip(".") + "."
    out = []
    for fip in port.fixed_ips:
        host = port.dns_name or "host-" + fip.ip_address.replace(".", "-").replace(":", "-")
        out.append({"hostname": host, "ip_address": fip.ip_address, "fqdn": f"{host}.{domain}"})
    return out


def known_hosts(repo: Repo) -> set[str]:
    return {h.host for h in repo.all(Host)}


def create(repo: Repo, ctx: Context, fields: dict[str, Any]) -> Port:
    net = repo.must(Network, fields["network_id"], lambda n: ctx.may_see(n.project_id, n.shared))
    requested = fields.pop("_fixed_ips", None)
    fields.setdefault("port_security_enabled", net.port_security_enabled)
    port = Port(**fields)
    port = port.replace(mac_address=_take_mac(repo, port, port.mac_address or None))
    port = port.replace(fixed_ips=_allocate(repo, port, net, requested))
    port = _apply_security(repo, ctx, port, "security_groups" in fields)
    _check(repo, port)
    return repo.save(port, new=True)


def _take_mac(repo: Repo, port: Port, mac: str | None) -> str:
    if mac is not None:
        problems = validate.check_mac(mac, "port.mac_address")
        if problems:
            raise ModelError(problems)
        if repo.tx.get(keys.mac(mac)) is not None:
            raise Conflict(f"Unable to complete operation for network {port.network_id}. "
                           f"The mac address {mac} is in use.", type="MacAddressInUse")
    else:
        for _ in range(16):
            mac = ipam.random_mac()
            if repo.tx.get(keys.mac(mac)) is None:
                break
        else:  # every candidate was taken: never hand out a MAC twice
            raise Conflict(f"Unable to create the port on network {port.network_id}: no free "
                           "MAC address was found after 16 attempts.",
                           type="MacAddressGenerationFailure")
    assert mac is not None
    repo.put_json(keys.mac(mac), port.id)
    return mac


def _allocate(repo: Repo, port: Port, net: Network,
              requested: tuple[dict[str, str], ...] | None) -> tuple[FixedIP, ...]:
    subnets = sorted(repo.where(Subnet, network_id=net.id),
                     key=lambda s: (s.ip_version, s.created_at, s.id))
    if requested is None:
        wanted: list[dict[str, str]] = []
        v4 = [s for s in subnets if s.ip_version == 4]
        if v4:
            wanted.append({"subnet_id": v4[0].id})
        wanted += [{"subnet_id": s.id} for s in subnets if s.ip_version == 6]
        requested = tuple(wanted)
    by_id = {s.id: s for s in subnets}
    explicit = [_normal_ip(r["ip_address"]) for r in requested if r.get("ip_address")]
    twice = sorted({ip for ip in explicit if explicit.count(ip) > 1})
    if twice:
        raise BadRequest(f"Invalid input for fixed_ips. Reason: IP address {twice[0]} is "
                         "requested more than once.")
    out = [_allocate_one(repo, port, net, by_id, req, i) for i, req in enumerate(requested)]
    if len({(f.subnet_id, f.ip_address) for f in out}) != len(out):
        raise BadRequest("Invalid input for fixed_ips. Reason: duplicate IP address requested.")
    return tuple(out)


def _normal_ip(ip: str) -> str:
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ip


def _allocate_one(repo: Repo, port: Port, net: Network, subnets: dict[str, Subnet],
                  req: dict[str, str], index: int) -> FixedIP:
    path = f"port.fixed_ips[{index}]"
    ip = req.get("ip_address")
    subnet_id = req.get("subnet_id") or (_subnet_for(ip, subnets, net) if ip else None)
    if subnet_id is None:
        raise BadRequest(f"Invalid input for fixed_ips. Reason: {path} names neither a subnet "
                         "nor an address.")
    subnet = subnets.get(subnet_id)
    if subnet is None:
        raise BadRequest(f"Invalid input for fixed_ips. Reason: subnet {subnet_id} is not on "
                         f"network {net.id}.")
    if ip is None:
        ip = _free_ip(repo, subnet, net)
    else:
        problems = validate.check_fixed_ip(ip, subnet, path + ".ip_address",
                                           port.device_owner.startswith("network:router"))
        if problems:
            raise ModelError(problems)
        ip = str(ipaddress.ip_address(ip))
        if repo.tx.get(keys.ipam(subnet.id, ip)) is not None:
            raise Conflict(f"IP address {ip} already allocated in subnet {subnet.id}",
                           type="IpAddressAlreadyAllocated")
    repo.put_json(keys.ipam(subnet.id, ip), port.id)
    return FixedIP(subnet.id, ip)


def _free_ip(repo: Repo, subnet: Subnet, net: Network) -> str:
    """The lowest free address of the subnet's pools.  The allocations are read
    as a hint (a commit does not depend on all of them); the chosen address's
    own key is read, so a concurrent allocation of it fails this commit."""
    used = {kv.key.rsplit("/", 1)[1] for kv in repo.peek(keys.ipam(subnet.id))}
    while True:
        ip = ipam.first_free(subnet.allocation_pools, used, subnet.ip_version)
        if ip is None:
            raise Conflict(f"No more IP addresses available on network {net.id}.",
                           type="IpAddressGenerationFailure")
        if repo.tx.get(keys.ipam(subnet.id, ip)) is None:
            return ip
        used.add(ip)  # taken since the hint was read


def _subnet_for(ip: str, subnets: dict[str, Subnet], net: Network) -> str:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        raise BadRequest(f"Invalid input for fixed_ips. Reason: '{ip}' is not a valid IP "
                         "address.") from None
    for s in subnets.values():
        if addr in ipaddress.ip_network(s.cidr):
            return s.id
    raise BadRequest(f"Invalid input for fixed_ips. Reason: IP address {ip} is not a valid IP "
                     f"for any of the subnets on network {net.id}.")


def _apply_security(repo: Repo, ctx: Context, port: Port, explicit: bool) -> Port:
    if not explicit and port.port_security_enabled and not port.device_owner.startswith("network:"):
        port = port.replace(security_groups=(security.ensure_default(repo, port.project_id).id,))
    visible = security.GROUP_KIND.visible(ctx)
    for sg in port.security_groups:
        repo.must(SecurityGroup, sg, visible)
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
    if port.qos_policy_id is not None:
        repo.must(QosPolicy, port.qos_policy_id)


def update(repo: Repo, ctx: Context, port: Port, fields: dict[str, Any]) -> Port:
    if not ctx.owns(port.project_id):
        raise Forbidden(f"Only the owner of port {port.id} may change it")
    requested = fields.pop("_fixed_ips", None)
    new = port.replace(**fields)
    if "mac_address" in fields and new.mac_address != port.mac_address:
        if port.binding_host_id:
            raise Conflict(f"Port {port.id} is bound; its MAC address cannot change",
                           type="PortBound")
        repo.delete_key(keys.mac(port.mac_address))
        new = new.replace(mac_address=_take_mac(repo, new, new.mac_address))
    if requested is not None:
        new = _reallocate(repo, port, new, requested)
    new = _apply_security(repo, ctx, new, True)
    _check(repo, new)
    return repo.save(new)


def _reallocate(repo: Repo, old: Port, new: Port,
                requested: tuple[dict[str, str], ...]) -> Port:
    for fip in old.fixed_ips:
        repo.delete_key(keys.ipam(fip.subnet_id, fip.ip_address))
    net = repo.must(Network, old.network_id)
    kept = {(f.subnet_id, f.ip_address) for f in old.fixed_ips}
    reqs = []
    for req in requested:
        if "ip_address" not in req and "subnet_id" in req:
            same = [f for f in old.fixed_ips if f.subnet_id == req["subnet_id"]
                    and (f.subnet_id, f.ip_address) in kept]
            if same:
                kept.discard((same[0].subnet_id, same[0].ip_address))
                req = {"subnet_id": same[0].subnet_id, "ip_address": same[0].ip_address}
        reqs.append(req)
    return new.replace(fixed_ips=_allocate(repo, new, net, tuple(reqs)))


def release(repo: Repo, port: Port) -> None:
    for fip in port.fixed_ips:
        repo.delete_key(keys.ipam(fip.subnet_id, fip.ip_address))
    repo.delete_key(keys.mac(port.mac_address))
    for kv in repo.tx.range(keys.binding(port.id)):
        repo.delete_key(kv.key)
    repo.remove(port)


def delete(repo: Repo, ctx: Context, port: Port) -> None:
    if not ctx.owns(port.project_id):
        raise Forbidden(f"Only the owner of port {port.id} may delete it")
    if port.device_owner in PROTECTED_OWNERS:
        raise Conflict(f"Port {port.id} cannot be deleted directly via the port API: has device "
                       f"owner {port.device_owner}.", type="ServicePortInUse")
    from overcast.api.kinds import floatingip

    floatingip.disassociate_port(repo, port.id)
    release(repo, port)
