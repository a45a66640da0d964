"""Review findings (helper review-1, 2026-12-01), each a test that fails on
the code it names, marked ``xfail(strict=True)`` so the suite stays green
until the fix lands; the fix turns it into an unexpected pass, and the
marker then goes.

Finding 1: a security group and an address group that share an id.  The
compiler resolves a rule's remote through one mapping keyed by the bare id
(``firewall._Remotes``: ``{**members, **address groups}``; the group sets
key their snapshots by ``firewall_rules.remote_of``), so an address group
whose id is a security group's replaces that group's members as the remote
of every ``remote_group_id`` rule naming it.  Neutron's default group's
"ingress from the group" rule then admits the address group's addresses.
The API lets whoever may choose ids (``create_<kind>:id``: the admin) make
such a pair, in either order (an address group given a security group's id,
or a security group given an address group's id); Neutron lets nobody
choose an address group's id (``allow_post: False``)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from overcast.model.types import AddressGroup
from overcast.plan import HostView
from overcast.plan.firewall import forget

from .test_firewall_golden import DEFAULT, compiled, default_rules, elements, group, vm, world


def ingress4(view: HostView) -> list[str]:
    forget()
    return [ln.split(" # ")[0] for ln in elements(compiled(view)).splitlines()
            if ln.startswith("inet in4")]


@pytest.mark.xfail(strict=True, reason="review-1 finding 1: security group and address group "
                                       "ids share one namespace in the compiler's remotes")
def test_an_address_group_with_a_security_groups_id_does_not_replace_its_members() -> None:
    view = world([vm(1, "h1", "10.0.0.1"), vm(2, "h2", "10.0.0.2")], [group(DEFAULT)],
                 default_rules(DEFAULT))
    members = ["inet in4_any 10.0.0.1 . <de>", "inet in4_any 10.0.0.2 . <de>"]
    assert ingress4(view) == members
    # an address group nobody's rule names, whose id happens to be the default group's
    clash = replace(view, address_groups=[AddressGroup(id=DEFAULT, addresses=("0.0.0.0/0",))])
    assert ingress4(clash) == members  # fails: ["inet in4_any 0.0.0.0/0 . <de>"], open to all
