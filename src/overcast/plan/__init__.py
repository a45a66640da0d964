"""overcast.plan: pure planning (no I/O).

Exports ``HostView``, ``plan_host``, ``HostPlan``, ``Problem``; kernel names
and ownership marks live in :mod:`overcast.plan.names`.
"""

from overcast.plan.host import HostPlan, HostView, Problem, plan_host

__all__ = ["HostPlan", "HostView", "Problem", "plan_host"]
