"""Suite-wide rules.

* Tests marked ``root`` need root and real namespaces. Without root they are
  skipped; as root (CI) a skipped root test fails the whole run, and so does a
  run in which no test executed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported by the fixture, so that collecting the suite does not load the API
    from overcast.api.embedded import EmbeddedServer

IS_ROOT = os.geteuid() == 0
_root_skipped: list[str] = []
_executed = 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IS_ROOT:
        return
    skip = pytest.mark.skip(reason="needs root (runs in CI as root)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    global _executed
    if report.when == "call" and not report.skipped:
        _executed += 1
    if report.skipped and IS_ROOT and "root" in report.keywords:
        _root_skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if session.config.option.collectonly:
        return
    if IS_ROOT and _root_skipped:
        print("\nFAIL: root tests were skipped while running as root:")
        for nodeid in _root_skipped:
            print("  ", nodeid)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if _executed == 0:
        print("\nFAIL: no test ran")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def api_server() -> Iterator[EmbeddedServer]:
    """A fresh API on a free loopback port over an in-memory store."""
    from overcast.api import Api
    from overcast.api.embedded import EmbeddedServer
    from overcast.store import MemoryStore

    with EmbeddedServer(Api(MemoryStore())) as server:
        yield server


@pytest.fixture
def api_url(api_server: EmbeddedServer) -> str:
    return str(api_server.url)
