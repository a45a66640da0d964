"""``overcast server`` refusing to start says why, in one line naming the
problem (and the file), and exits non-zero without a traceback (issue 7,
item 16)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from overcast.cli.main import main

from .server import free_port


def refusal(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run ``overcast server ARGS``, which must refuse: its one line on stderr."""
    code = main(["server", *args])
    out, err = capsys.readouterr()
    assert code != 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_no_auth_on_a_public_address_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    line = refusal(capsys, "--bind", f"0.0.0.0:{free_port()}", "--store", "memory:")
    assert "loopback" in line and "--auth-config" in line


def test_the_real_command_prints_the_reason_and_exits_non_zero() -> None:
    # what the console script `overcast` runs (python -m would add a runpy warning)
    entry = "import sys; from overcast.cli.main import main; sys.exit(main())"
    out = subprocess.run([sys.executable, "-c", entry, "server",
                          "--bind", f"0.0.0.0:{free_port()}", "--store", "memory:"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "loopback" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


@pytest.mark.parametrize("content,words", [
    (None, ["cannot read"]),  # missing
    ("tokens: [unclosed\n  - : :\n", ["not valid YAML", "line"]),
    ("- just\n- a list\n", ["'tokens' mapping"]),
    ("tokens: [a, b]\n", ["'tokens' mapping"]),
    ("tokens: {}\n", ["'tokens' mapping"]),
    ("", ["'tokens' mapping"]),
    ("tokens:\n  s3cretTOKEN: admin\n", ["token entry 1", "mapping", "str"]),
    ("tokens:\n  s3cretTOKEN: {project_id: p, role: root}\n", ["token entry 1", "role", "'root'"]),
    ("tokens:\n  s3cretTOKEN: {role: admin}\n", ["token entry 1", "project_id"]),
    ("tokens:\n  s3cretTOKEN: {project_id: p}\n  12345: {project_id: q}\n", ["token entry 2", "string"]),
])
def test_a_broken_token_file_is_named_in_one_line(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path, content: str | None,
                                                  words: list[str]) -> None:
    path = tmp_path / "tokens.yaml"
    if content is not None:
        path.write_text(content)
    # --workers 0: refused after the token file, so that a file wrongly accepted
    # fails this test at once instead of starting a server
    line = refusal(capsys, "--auth-config", str(path), "--store", "memory:", "--workers", "0")
    assert str(path) in line
    for word in words:
        assert word in line, line
    assert "s3cretTOKEN" not in line  # a token is a secret: never in the message


def test_a_binary_token_file_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_bytes(b"\xff\xfe\x00binary")
    line = refusal(capsys, "--auth-config", str(path), "--store", "memory:", "--workers", "0")
    assert str(path) in line and "UTF-8" in line


@pytest.mark.parametrize("option,value", [
    ("--idle-timeout", "0"), ("--header-timeout", "-1"), ("--max-connections", "0"),
    ("--max-header-bytes", "10"), ("--max-body-bytes", "0"),
])
def test_an_edge_limit_out_of_range_is_named(capsys: pytest.CaptureFixture[str], option: str,
                                             value: str) -> None:
    line = refusal(capsys, option, value, "--store", "memory:", "--bind", "127.0.0.1:0")
    assert option in line and value in line


def test_an_ipv6_bind_is_taken_bare_or_in_brackets() -> None:
    """``[::1]:9696`` as ``EmbeddedServer.url`` and URLs write it, or ``::1`` with --port."""
    from overcast.api.server import bind_address

    assert bind_address("[::1]:9696", None) == ("::1", 9696)
    assert bind_address("[::1]", 9797) == ("::1", 9797)
    assert bind_address("[::1]:9696", 9797) == ("::1", 9797)
    assert bind_address("::1", 9797) == ("::1", 9797)
    assert bind_address("127.0.0.1:9696", None) == ("127.0.0.1", 9696)


@pytest.mark.parametrize("bind", ["[::1]", "[::1]:", "[::1:9696", "[nothost]:9696",
                                  "[127.0.0.1]:9696", "127.0.0.1:99999"])
def test_a_malformed_bind_is_named(capsys: pytest.CaptureFixture[str], bind: str) -> None:
    line = refusal(capsys, "--bind", bind, "--store", "memory:")
    assert "--bind" in line and bind in line


def test_a_stop_grace_out_of_range_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    line = refusal(capsys, "--stop-grace", "0", "--store", "memory:", "--bind", "127.0.0.1:0")
    assert "--stop-grace" in line
