"""A security group rule whose remote is an address group, enforced by the
real kernel: a client whose address is in the group connects, one outside
it gets no SYN through (captured at the server); the address taken out of
the group stops new connections and cuts the open one (the conntrack sweep
deletes its entry and the closed set drops its next segments), and put back
it admits again.  The hosts and VMs are ``test_firewall_packets``'s
(``host`` fixture: namespaces ``oc-fw-<run>-<test>…``, removed after)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from overcast.model.types import AddressGroup
from plan.test_firewall_golden import WEB, group, rule, vm

from .test_firewall_packets import (
    MakeHost,
    _sport,
    blocked_syn,
    closed,
    closed_flows,
    conntrack,
    exchange,
    host,
    listen,
    ready,
    stopped,
    talk,
)
from .test_firewall_wire import Capture

pytestmark = pytest.mark.root
__all__ = ["host"]  # the fixture, used by name
AG = "a9000000-0000-4000-8000-0000000000a9"


def test_an_address_group_admits_its_addresses_and_follows_their_changes(host: MakeHost) -> None:
    rules = [rule(70, WEB, protocol="tcp", port_range_min=22, port_range_max=22,
                  remote_address_group_id=AG), rule(71, WEB, "egress")]
    # the clients have no port security: only the server's rules decide
    h = host([vm(1, "h1", "10.0.0.1", (WEB,)),
              vm(2, "h1", "10.0.0.2", (), port_security_enabled=False),
              vm(3, "h1", "10.0.0.3", (), port_security_enabled=False)], [group(WEB)], rules)
    server, member, outsider = h.vms[1], h.vms[2], h.vms[3]
    office = AddressGroup(id=AG, addresses=("10.0.0.2/32", "192.0.2.0/24"))
    h.converge(replace(h.view, address_groups=[office]))
    ssh = talk(member, server, 22)
    srv = listen(server, 22)
    blocked_syn(outsider, server, 22, Capture(server.ns))
    assert not ready(srv, 0), "the outsider's connection was accepted"

    # the member's address leaves the group: its open connection is cut ...
    swept = h.converge(replace(h.view, address_groups=[office.replace(addresses=("192.0.2.0/24",))]))
    assert [(f.src, f.dst, f.dport) for f in swept] == [(member.ip, server.ip, 22)], swept
    assert not [e for e in conntrack(h) if "dport=22 " in e], conntrack(h)
    assert closed_flows(h) == [(member.ip, server.ip, ssh[0].getsockname()[1], 22)]
    stopped(server, member, ssh[1], lambda ip: ip[:2] == (server.ip, member.ip) and _sport(ip) == 22)
    # ... and it opens no new one
    blocked_syn(member, server, 22, Capture(server.ns))
    assert not ready(srv, 0), "a connection was accepted from an address no longer in the group"

    # back in the group: admitted again (a new connection), the outsider still not
    h.converge(replace(h.view, address_groups=[office]))
    again = talk(member, server, 22, srv=srv)
    exchange(again[0], again[1], b"admitted again")
    blocked_syn(outsider, server, 22, Capture(server.ns))
    assert not ready(srv, 0)
    closed(ssh)
    closed(again)
    srv.close()
