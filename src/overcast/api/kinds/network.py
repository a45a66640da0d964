"""Networks: segment (VNI) allocation, MTU, in-use checks."""

from __future__ import annotations

from typing import Any

from overcast.api import convert as cv
from overcast.api.auth import Context
from overcast.api.config import ApiConfig
from overcast.api.errors import BadRequest, Conflict, Forbidden
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Kind, stored
from overcast.model import keys, validate
from overcast.model.problems import ModelError
from overcast.model.types import Network, Port, Subnet

# Ports the network owns itself; they do not keep it "in use".
NETWORK_OWNED = ("network:dhcp",)


def _extra(repo: Repo, net: Network, out: dict[str, Any]) -> None:
    out["subnets"] = sorted(s.id for s in repo.where(Subnet, network_id=net.id))
    out["availability_zones"] = []
    out["ipv4_address_scope"] = None
    out["ipv6_address_scope"] = None
    out["is_default"] = False
    out["l2_adjacency"] = True


KIND = Kind(
    Network, "network", "networks", "/v2.0/networks",
    (
        stored("admin_state_up", cv.to_bool),
        Attr("status", "status", post=False, put=False),
        stored("shared", cv.to_bool),
        Attr("router:external", "router_external", cv.to_bool),
        stored("mtu", cv.int_range(68, 65535)),
        stored("port_security_enabled", cv.to_bool),
        Attr("provider:network_type", "network_type", cv.to_str(32), put=False, admin_only=True,
             admin_view=True),
        Attr("provider:segmentation_id", "segmentation_id", cv.optional(cv.to_int), put=False,
             admin_only=True, admin_view=True),
        Attr("provider:physical_network", "physical_network", cv.optional(cv.to_str(64)),
             put=False, admin_only=True, admin_view=True),
        stored("dns_domain", cv.to_str(255)),
        stored("availability_zone_hints", cv.list_of(cv.to_str(255))),
        stored("qos_policy_id", cv.optional(cv.to_uuidish)),
    ),
    extra=_extra,
    shared_field="shared",
)


def create(repo: Repo, ctx: Context, cfg: ApiConfig, fields: dict[str, Any]) -> Network:
    net_type = fields.get("network_type") or cfg.default_network_type
    fields["network_type"] = net_type
    fields.setdefault("mtu", cfg.default_mtu(net_type))
    _check_mtu(cfg, net_type, fields["mtu"])
    net = Network(**fields)
    problems = validate.check_network(net, cfg.vni_range)
    if problems:
        raise ModelError(problems)
    if net_type == "vxlan":
        net = net.replace(segmentation_id=_allocate_vni(repo, cfg, net))
    _check_qos(repo, net.qos_policy_id)
    return repo.save(net, new=True)


def _check_mtu(cfg: ApiConfig, net_type: str, mtu: int) -> None:
    if mtu > cfg.max_mtu(net_type):
        raise BadRequest(f"Invalid input for mtu. Reason: requested MTU {mtu} is too big for a "
                         f"{net_type} network; the maximum is {cfg.max_mtu(net_type)}.")


def _allocate_vni(repo: Repo, cfg: ApiConfig, net: Network) -> int:
    if net.segmentation_id is not None:
        vni = net.segmentation_id
        if repo.tx.get(keys.segment("vxlan", vni)) is not None:
            raise Conflict(f"Unable to create the network. The tunnel id {vni} is in use.",
                           type="TunnelIdInUse")
    else:
        used = {int(kv.key.rsplit("/", 1)[1]) for kv in repo.tx.range(keys.segment("vxlan"))}
        lo, hi = cfg.vni_range
        vni = next((n for n in range(lo, hi + 1) if n not in used), -1)
        if vni < 0:
            raise Conflict("Unable to create the network. No tenant network is available "
                           "for allocation.", type="NoNetworkAvailable")
    repo.put_json(keys.segment("vxlan", vni), net.id)
    return vni


def _check_qos(repo: Repo, policy_id: str | None) -> None:
    from overcast.model.types import QosPolicy

    if policy_id is not None:
        repo.must(QosPolicy, policy_id)


def update(repo: Repo, ctx: Context, cfg: ApiConfig, net: Network,
           fields: dict[str, Any]) -> Network:
    if not ctx.owns(net.project_id):
        raise Forbidden(f"Only the owner of network {net.id} may change it")
    new = net.replace(**fields)
    if net.shared and not new.shared:
        others = sorted({p.project_id for p in repo.where(Port, network_id=net.id)
                         if p.project_id and p.project_id != net.project_id})
        if others:
            raise Conflict(f"Unable to reconfigure sharing settings for network {net.id}. "
                           f"Multiple tenants are using it ({', '.join(others[:5])}).",
                           type="InvalidSharedSetting")
    _check_mtu(cfg, new.network_type, new.mtu)
    _check_qos(repo, new.qos_policy_id)
    return repo.save(new)


def delete(repo: Repo, ctx: Context, net: Network) -> None:
    if not ctx.owns(net.project_id):
        raise Forbidden(f"Only the owner of network {net.id} may delete it")
    ports = repo.where(Port, network_id=net.id)
    if any(p.device_owner not in NETWORK_OWNED for p in ports):
        raise Conflict(f"Unable to complete operation on network {net.id}. There are one or "
                       "more ports still in use on the network.", type="NetworkInUse")
    from overcast.api.kinds.port import release

    for owned in ports:  # the network's own ports (DHCP) go with it
        release(repo, owned)
    for subnet in repo.where(Subnet, network_id=net.id):
        _drop_subnet(repo, subnet)
    if net.segmentation_id is not None and net.network_type == "vxlan":
        repo.delete_key(keys.segment("vxlan", net.segmentation_id))
    repo.remove(net)


def _drop_subnet(repo: Repo, subnet: Subnet) -> None:
    for kv in repo.tx.range(keys.ipam(subnet.id)):
        repo.delete_key(kv.key)
    repo.remove(subnet)
