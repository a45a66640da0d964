"""overcast.plan: pure planning (no I/O).

Exports ``HostView``, ``plan_host``, ``HostPlan``, ``Problem``.  The kernel
vocabulary is in :mod:`overcast.plan.state` (records, ``KernelState``,
``Change``) and :mod:`overcast.plan.raw` (kernel rows and the read/write
protocols); names and ownership marks in :mod:`overcast.plan.names`; one
module per kernel subsystem in :mod:`overcast.plan.subsystems`; the generic
observe, diff and apply steps in :mod:`overcast.plan.diff`.
"""

from overcast.model.problems import Problem
from overcast.plan.host import HostPlan, plan_host
from overcast.plan.view import HostView

__all__ = ["HostPlan", "HostView", "Problem", "plan_host"]
