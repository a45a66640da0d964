"""scripts/tempest refuses a bad --regex at once: exit 2, one line naming the
regex, before it installs or starts anything (nothing of tempest runs here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .options import DEFAULT_REGEX, parse_args

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("regex", ["(", "a[", "*", "tempest.api.(network"])
def test_a_bad_regex_is_exit_2_in_one_line(regex: str, tmp_path: Path) -> None:
    # what scripts/tempest makes first, where it cannot be made: a script that went on
    # would fail there (exit 1) instead of installing tempest
    (tmp_path / "file").write_text("")
    venv = tmp_path / "file" / "venv-tempest"
    env = {**os.environ, "OVERCAST_TEMPEST_VENV": str(venv), "PYTHON": sys.executable}
    run = subprocess.run([str(ROOT / "scripts" / "tempest"), "--keep", "--regex", regex],
                         capture_output=True, text=True, env=env, timeout=30, check=False)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"scripts/tempest: invalid --regex {regex!r}: ")


def test_the_runner_refuses_it_too(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        parse_args(["--regex", "(", "--concurrency", "3"])
    assert stop.value.code == 2
    assert capsys.readouterr().err == (
        "scripts/tempest: invalid --regex '(': missing ), unterminated subpattern at "
        "position 0\n")
    args = parse_args(["--regex", r"^tempest\.api\.network\.test_ports", "--keep"])
    assert (args.regex, args.keep, args.concurrency) == (
        r"^tempest\.api\.network\.test_ports", True, 2)
    assert parse_args([]).regex == DEFAULT_REGEX
