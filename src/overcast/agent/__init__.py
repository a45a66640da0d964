"""overcast.agent: the host agent.

Exports ``ModelView`` (the store's in-memory copy), ``Reconciler`` (one pass:
plan, observe, diff, apply, report), ``AgentLoop`` (watch + when to reconcile),
``Liveness`` (registration and lease) and ``main``.
"""

from overcast.agent.liveness import Liveness
from overcast.agent.loop import AgentLoop
from overcast.agent.reconciler import PassResult, Reconciler
from overcast.agent.view import ModelView

__all__ = ["AgentLoop", "Liveness", "ModelView", "PassResult", "Reconciler"]
