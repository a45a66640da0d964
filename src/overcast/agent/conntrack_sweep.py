"""After a firewall change: delete the conntrack entries the new ruleset no
longer admits (``docs/firewall.md``, "What a rule change does to existing
connections").

Only when the change removed elements that can close access (a rule
element of a tag in use, a port's tag or address): then the entries of the
zones of the networks concerned are read (one filtered dump per zone),
judged against the compiled ruleset by :func:`overcast.plan.
firewall_admits.condemned`, and the condemned ones deleted.  Nothing else
on the host is read or touched.  A change the kernel refused whole sweeps
nothing (the kernel still holds the old rules); one refused in part sweeps
as planned.  A failure to read or delete is logged and the pass goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from overcast.linux.kernel import Kernel
from overcast.plan.firewall_admits import Flow, condemned, swept_zones
from overcast.plan.state import ApplyError, Change, KernelState
from overcast.plan.subsystems.firewall import NftRuleset
from overcast.plan.subsystems.links import Attachment

log = logging.getLogger(__name__)


def sweep_conntrack(kernel: Kernel, desired: KernelState, changes: Iterable[Change],
                    errors: Iterable[ApplyError]) -> tuple[Flow, ...]:
    """The entries deleted (see the module doc)."""
    whole = {e.change for e in errors if not e.refused}
    for change in changes:
        if not isinstance(change.obj, NftRuleset) or change.op != "update" or change in whole:
            continue
        masters = {a.ifname: a.master for a in desired[Attachment]}
        zones = swept_zones(change.old, change.obj, masters)
        if not zones:
            return ()
        try:
            doomed = condemned(kernel.conntrack_flows(zones), change.obj, masters)
            deleted = kernel.conntrack_delete(doomed) if doomed else 0
        except OSError as exc:
            log.error("conntrack sweep of zones %s failed: %s", sorted(zones), exc)
            return ()
        if doomed:
            log.info("conntrack: deleted %d entries no longer admitted (zones %s; %d already gone)",
                     deleted, ", ".join(map(str, sorted(zones))), len(doomed) - deleted)
        return tuple(doomed)
    return ()
