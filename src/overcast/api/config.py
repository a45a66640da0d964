"""Settings of the API server that shape allocation and defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

VXLAN_OVERHEAD = 50


@dataclass(frozen=True, slots=True)
class ApiConfig:
    vni_range: tuple[int, int] = (1, 16_777_215)
    underlay_mtu: int = 1500
    default_network_type: str = "vxlan"
    dns_domain: str = "openstacklocal."
    max_body_bytes: int = 1 << 20
    # resource -> default quota limit instead of Neutron's (-1: unlimited); see quotas.py
    quota_defaults: dict[str, int] = field(default_factory=dict)

    def max_mtu(self, network_type: str) -> int:
        if network_type == "vxlan":
            return self.underlay_mtu - VXLAN_OVERHEAD
        return self.underlay_mtu

    def default_mtu(self, network_type: str) -> int:
        return self.max_mtu(network_type)
