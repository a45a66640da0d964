"""``overcast server --port P``: beside ``--bind``, the port overrides the bind's
port, and ``--bind`` may then be a bare host."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from overcast.api.server import bind_address, parse_args

from .server import free_port, running_server


@pytest.mark.parametrize(("argv", "expected"), [
    ([], ("127.0.0.1", 9696)),
    (["--port", "8080"], ("127.0.0.1", 8080)),
    (["--bind", "127.0.0.1:9000"], ("127.0.0.1", 9000)),
    (["--bind", "127.0.0.1:9000", "--port", "8080"], ("127.0.0.1", 8080)),
    (["--bind", "localhost", "--port", "8080"], ("localhost", 8080)),
    (["--bind", "::1", "--port", "8080"], ("::1", 8080)),
    (["--bind", "::1:9000"], ("::1", 9000)),
])
def test_port_overrides_the_port_of_bind(argv: list[str], expected: tuple[str, int]) -> None:
    args = parse_args(argv)
    assert bind_address(args.bind, args.port) == expected


@pytest.mark.parametrize("argv", [
    ["--bind", "localhost"],  # a bare host needs --port
    ["--bind", "::1"],
    ["--bind", "localhost", "--port", "70000"],
    ["--bind", "", "--port", "8080"],
])
def test_bad_bind_or_port_is_refused(argv: list[str]) -> None:
    args = parse_args(argv)
    with pytest.raises(SystemExit, match="--bind|--port"):
        bind_address(args.bind, args.port)


def test_help_names_port_and_bind(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    out = capsys.readouterr().out
    assert "--port" in out and "overrides the port of --bind" in out


def test_overcast_server_port_serves_versions(tmp_path: Path) -> None:
    port = free_port()
    with running_server(["--port", str(port), "--store", "memory:"], port,
                        tmp_path / "server.log") as url:
        r = httpx.get(url + "/", timeout=5.0)
    assert r.status_code == 200
    assert "versions" in r.json()
