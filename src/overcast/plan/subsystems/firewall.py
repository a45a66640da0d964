"""The firewall: port security and security groups in Overcast's own
nftables tables (``table bridge overcast_fw`` and ``table inet overcast_fw``,
each with the comment ``overcast:fw``).  See ``docs/firewall.md``.

Records: the owned tables (:class:`NftTable`), their sets and maps
(:class:`NftSet`), their chains with their constant rules
(:class:`NftChain`) and the elements of the sets and maps
(:class:`NftElement`, each with the id of the API object that made it as its
comment).  The subsystem's one record is the whole :class:`NftRuleset` of
both tables: every change to it is ONE atomic nft batch (a small change
wholly within large rule sets is first staged by a batch of its own:
``firewall_apply``) computed as a diff
at element granularity (element adds and deletes; a chain is flushed and
refilled only when its constant rules change, i.e. with a new version of
Overcast; a table is never flushed or reloaded), so counters and sets
survive.

Observe reads the rows of the two firewall tables only (name AND mark) and
normalizes what the kernel spells its own way (protocol names, a full-length
prefix as an address, a one-value range as the value); a rule is recognized
by its comment (``overcast:fw:<digest>:<i>/<n>``), so a chain whose rules
were changed, removed or added by hand differs from the desired one and is
refilled.

Records: :mod:`~overcast.plan.subsystems.firewall_records`; observe and
its normalization: :mod:`~overcast.plan.subsystems.firewall_observe`; the
batch and apply with the refusal path:
:mod:`~overcast.plan.subsystems.firewall_apply`.  This module is the
subsystem (diff and the registration) and the names others import.
"""

from __future__ import annotations

from overcast.plan.subsystem import DiffContext, Subsystem
from overcast.plan.subsystems.firewall_apply import apply, batch
from overcast.plan.subsystems.firewall_observe import observe
from overcast.plan.subsystems.firewall_records import NftRuleset

__all__ = ["SUBSYSTEM", "NftRuleset", "apply", "batch", "diff", "observe"]


def diff(d: DiffContext) -> None:
    want = d.desired[NftRuleset]
    have = d.observed[NftRuleset]
    new = want[0] if want else None
    old = have[0] if have else None
    if new is None and old is not None:
        d.delete(old)
    elif new is not None and new != old:
        d.put(new, old)


SUBSYSTEM = Subsystem("firewall", (NftRuleset,), diff, observe, apply)
