"""After a firewall change: delete the conntrack entries the new ruleset no
longer admits (``docs/firewall.md``, "What a rule change does to existing
connections").

The zones to sweep are the agent's state (:class:`Sweep`), kept until a
sweep of them succeeds: those of the networks a change concerned (a rule
element of a tag in use, a port's tag or address removed:
:func:`overcast.plan.firewall_admits.swept_zones`), every zone of the
ruleset when it is created (a table deleted by hand, the firewall turned
on) and, on the agent's first pass, every zone of the desired ruleset (an
agent killed between an apply and its sweep).  Their entries are read (one
dump), judged against the desired ruleset by :func:`overcast.plan.
firewall_admits.condemned`, the condemned TCP flows put in the ``closed``
sets (their next mid-stream segment is dropped) and the condemned entries
deleted.  Nothing else on the host is read or touched.  A ruleset change
the kernel refused whole sweeps nothing (the kernel still holds the old
rules) and keeps the zones pending; one refused in part sweeps as planned.
Any failure (the kernel refusing, a timeout, a malformed reply) is logged
and keeps the zones pending: the next pass tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from overcast.linux.kernel import Kernel
from overcast.plan.firewall_admits import Flow, all_zones, closing, condemned, swept_zones
from overcast.plan.state import ApplyError, Change, KernelState
from overcast.plan.subsystems.firewall import NftRuleset
from overcast.plan.subsystems.links import Attachment

log = logging.getLogger(__name__)


@dataclass
class Sweep:
    """The zones still to sweep.  ``pending`` None: every zone of the
    desired ruleset (an agent's first pass)."""

    pending: frozenset[int] | None = frozenset()

    @classmethod
    def first(cls) -> Sweep:
        return cls(None)


def sweep_conntrack(kernel: Kernel, desired: KernelState, changes: Iterable[Change],
                    errors: Iterable[ApplyError], sweep: Sweep | None = None) -> tuple[Flow, ...]:
    """The entries deleted (see the module doc); ``sweep`` is updated."""
    sweep = Sweep() if sweep is None else sweep
    rulesets = list(desired[NftRuleset])
    if not rulesets:  # no firewall: nothing of ours to judge by
        sweep.pending = frozenset()
        return ()
    ruleset = rulesets[0]
    masters = {a.ifname: a.master for a in desired[Attachment]}
    whole = {e.change for e in errors if not e.refused}
    zones = set(all_zones(ruleset) if sweep.pending is None else sweep.pending)
    refused = False
    for change in changes:
        if not isinstance(change.obj, NftRuleset) or change.op == "delete":
            continue
        if change in whole:
            refused = True
            continue
        zones |= swept_zones(change.old if change.op == "update" else None, change.obj, masters)
    zones &= all_zones(ruleset)  # a zone no longer assigned has nothing of ours
    sweep.pending = frozenset(zones)
    if not zones or refused:
        return ()
    try:
        doomed = condemned(kernel.conntrack_flows(zones), ruleset, masters)
        if doomed:
            closes = closing(doomed)
            if closes:  # before the delete: no window where a segment is picked up
                kernel.nft(closes)
            deleted = kernel.conntrack_delete(doomed)
    except Exception as exc:  # noqa: BLE001 - any failure keeps the zones for the next pass
        log.error("conntrack sweep of zones %s failed (kept for the next pass): %s: %s",
                  sorted(zones), type(exc).__name__, exc)
        return ()
    sweep.pending = frozenset()
    if doomed:
        log.info("conntrack: deleted %d entries no longer admitted (zones %s; %d already gone)",
                 deleted, ", ".join(map(str, sorted(zones))), len(doomed) - deleted)
    return tuple(doomed)
