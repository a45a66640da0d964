"""Fixtures: a fake Neutron API and a runner of ``overcast`` commands against it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from overcast.cli.main import main

from .fake_neutron import FakeNeutron


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Run = Callable[..., Outcome]
World = dict[str, dict[str, Any]]  # name -> a resource the fake holds


@pytest.fixture
def fake() -> FakeNeutron:
    return FakeNeutron()


@pytest.fixture
def overcast(fake: FakeNeutron, capsys: pytest.CaptureFixture[str]) -> Run:
    """``overcast("network", "list")`` runs the command against ``fake``."""

    def run(*argv: str) -> Outcome:
        capsys.readouterr()
        code = main(list(argv), transport=fake.transport)
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run
