"""Fixtures for driving Overcast with the unmodified `openstack` CLI and openstacksdk.

The server comes from the suite-wide ``api_url`` fixture (a fresh Overcast API
on a free port). Setting ``OVERCAST_TEST_ENDPOINT`` points these tests at an
already running endpoint instead (for example tests/clients/record_server.py).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # openstack takes a second to import: only the tests that use it do
    from openstack.connection import Connection

OPENSTACK = Path(sys.executable).with_name("openstack")


class CLIError(AssertionError):
    pass


@dataclass
class OSC:
    """Runs the real `openstack` command against one endpoint."""

    endpoint: str
    tmp: Path

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(OS_AUTH_TYPE="none", OS_ENDPOINT=self.endpoint)
        # keep the user's clouds.yaml out of the way
        env["HOME"] = str(self.tmp)
        return env

    def run(self, cmd: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        args = [str(OPENSTACK), *shlex.split(cmd)]
        p = subprocess.run(
            args, env=self.env(), capture_output=True, text=True, timeout=120, cwd=self.tmp
        )
        if check and p.returncode != 0:
            raise CLIError(f"`openstack {cmd}` failed (rc={p.returncode}):\n{p.stderr.strip()}")
        return p

    def json(self, cmd: str) -> Any:
        """Run a command that prints something, with `-f json`, return the parsed output."""
        p = self.run(cmd + " -f json")
        try:
            return json.loads(p.stdout)
        except ValueError as e:
            raise CLIError(f"`openstack {cmd} -f json` printed non-JSON: {p.stdout!r}") from e

    def fails(self, cmd: str) -> str:
        """Run a command that must fail; return its stderr."""
        p = self.run(cmd, check=False)
        if p.returncode == 0:
            raise CLIError(f"`openstack {cmd}` succeeded but should have failed:\n{p.stdout}")
        return p.stderr


@pytest.fixture
def endpoint(request: pytest.FixtureRequest) -> str:
    url = os.environ.get("OVERCAST_TEST_ENDPOINT")
    if not url:
        url = request.getfixturevalue("api_url")
    return url.rstrip("/")


@pytest.fixture
def osc(endpoint: str, tmp_path: Path) -> OSC:
    return OSC(endpoint, tmp_path)


@pytest.fixture
def conn(endpoint: str) -> Iterator[Connection]:
    import openstack

    c = openstack.connect(
        auth_type="none", auth={"endpoint": endpoint}, load_yaml_config=False, load_envvars=False
    )
    yield c
    c.close()


@pytest.fixture
def uniq() -> str:
    """A short suffix so that names do not collide on a shared endpoint."""
    import uuid

    return uuid.uuid4().hex[:6]
