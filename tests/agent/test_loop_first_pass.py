"""The agent says when its first pass after a start is done, and what it
changed: the lab waits for that line before it tests a restarted agent."""

from __future__ import annotations

import logging

import pytest

from overcast.agent import AgentLoop, ModelView, Reconciler
from overcast.plan import names

from .test_reconciler import PORT_A, settle, setup


def test_the_first_pass_is_logged_once_with_its_changes(caplog: pytest.LogCaptureFixture) -> None:
    store, kernel, loop = setup()
    kernel.add_device(names.tap_name(PORT_A))
    with caplog.at_level(logging.INFO, logger="overcast.agent.loop"):
        settle(loop)
    first = [r.getMessage() for r in caplog.records if r.getMessage().startswith("first pass:")]
    assert len(first) == 1 and "0 change(s)" not in first[0], first
    caplog.clear()
    restarted = AgentLoop(store, Reconciler("h1", "198.18.0.11", store, kernel, ModelView()))
    with caplog.at_level(logging.INFO, logger="overcast.agent.loop"):
        restarted.step()
        restarted.step()
    first = [r.getMessage() for r in caplog.records if r.getMessage().startswith("first pass:")]
    assert first == ["first pass: 0 change(s), 0 refused, 0 port(s) held"]
