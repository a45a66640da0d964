"""What the API takes from the world, injected as the agent's clock is: the
wall clock (``created_at``/``updated_at``), new object ids and the randomness
MAC addresses are drawn from.  Production uses the defaults; tests pass fixed
ones instead of patching modules."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _uuid4() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Seams:
    clock: Callable[[], datetime] = _utc_now
    new_id: Callable[[], str] = _uuid4
    rng: random.Random = field(default_factory=random.SystemRandom)  # MAC addresses

    def timestamp(self) -> str:
        """Now, as Neutron writes ``created_at``/``updated_at`` (UTC, seconds)."""
        return self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
