"""Errors reach the user as one clear line on stderr and exit code 1, never a
traceback; plus the global options (URL, token) and the pass-through commands."""

from __future__ import annotations

import httpx
import pytest

from overcast.cli.main import main, split_passthrough

from .conftest import Run
from .fake_neutron import FakeNeutron


def test_no_match_by_name(overcast: Run) -> None:
    result = overcast("network", "show", "ghost")
    assert result.code == 1
    assert result.err == "Error: No network found for 'ghost'\n"


def test_ambiguous_name(overcast: Run, fake: FakeNeutron) -> None:
    fake.add("networks", name="twin")
    fake.add("networks", name="twin")
    result = overcast("subnet", "create", "s", "--network", "twin", "--subnet-range", "10.0.0.0/24")
    assert result.code == 1
    assert "More than one network exists with the name 'twin'" in result.err
    assert fake.writes() == []


def test_name_lookup_tries_id_first_then_name(overcast: Run, fake: FakeNeutron) -> None:
    net = fake.add("networks", name="blue")
    overcast("network", "show", "blue")
    assert [(s.path, s.params) for s in fake.sent] == [
        ("/v2.0/networks/blue", {}), ("/v2.0/networks", {"name": "blue"})]
    fake.sent.clear()
    overcast("network", "show", net["id"])
    assert [s.path for s in fake.sent] == [f"/v2.0/networks/{net['id']}"]


def _answer(status: int, **kwargs: object) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, **kwargs))  # type: ignore[arg-type]


def test_server_error_message_and_status(capsys: pytest.CaptureFixture[str]) -> None:
    body = {"NeutronError": {"type": "IpAddressAlreadyAllocated",
                             "message": "IP address 10.0.0.5 already allocated in subnet s",
                             "detail": ""}}
    code = main(["network", "create", "x"], transport=_answer(409, json=body))
    err = capsys.readouterr().err
    assert code == 1
    assert err == "Error: IP address 10.0.0.5 already allocated in subnet s (HTTP 409)\n"


def test_non_json_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["network", "list"], transport=_answer(500, text="boom"))
    assert code == 1
    assert capsys.readouterr().err == "Error: boom (HTTP 500)\n"


def test_connection_refused_says_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--os-url", "http://127.0.0.1:9", "network", "list"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("Error: cannot reach the Overcast API at http://127.0.0.1:9: "
                          "is `overcast server` running?")
    assert "Traceback" not in err


def test_url_and_token_from_environment(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"networks": []})

    monkeypatch.setenv("OVERCAST_URL", "http://127.0.0.1:7777/")
    monkeypatch.setenv("OVERCAST_TOKEN", "secret")
    assert main(["network", "list"], transport=httpx.MockTransport(handler)) == 0
    assert str(seen[0].url) == "http://127.0.0.1:7777/v2.0/networks"
    assert seen[0].headers["X-Auth-Token"] == "secret"
    main(["--os-token", "other", "network", "list"], transport=httpx.MockTransport(handler))
    assert seen[1].headers["X-Auth-Token"] == "other"


def test_no_token_no_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OVERCAST_TOKEN", raising=False)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"networks": []})

    main(["network", "list", "-f", "json"], transport=httpx.MockTransport(handler))
    assert "X-Auth-Token" not in seen[0].headers


def test_usage_errors_exit_2_and_help_exits_0(overcast: Run, fake: FakeNeutron) -> None:
    assert overcast("network").code == 2
    assert overcast("network", "create").code == 2
    assert overcast("frobnicate").code == 2
    assert overcast("security", "group", "rule", "create", "--help").code == 0
    assert fake.sent == []


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["server", "--bind", "127.0.0.1:9797"], ({}, "server", ["--bind", "127.0.0.1:9797"])),
        (["--os-url", "http://h:1", "agent", "run", "--host", "hv1"],
         ({"--os-url": "http://h:1"}, "agent", ["run", "--host", "hv1"])),
        (["--os-token=t", "lab", "up", "-h"], ({"--os-token": "t"}, "lab", ["up", "-h"])),
        (["network", "list"], None),
        (["--help"], None),
    ],
)
def test_passthrough_split(argv: list[str], expected: object) -> None:
    assert split_passthrough(argv) == expected


def test_connection_options_after_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OVERCAST_TOKEN", raising=False)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"networks": []})

    transport = httpx.MockTransport(handler)
    main(["--os-url", "http://127.0.0.1:1111", "network", "list", "--os-token", "t"],
         transport=transport)
    main(["network", "list", "--os-url", "http://127.0.0.1:2222"], transport=transport)
    assert [(r.url.port, r.headers.get("X-Auth-Token")) for r in seen] == [(1111, "t"),
                                                                           (2222, None)]


def test_bad_url_and_internal_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--os-url", "127.0.0.1:9696", "network", "list"]) == 1
    assert "must start with http:// or https://" in capsys.readouterr().err

    def no_ids(request: httpx.Request) -> httpx.Response:  # a server that forgets ids
        if request.url.path.endswith("/x"):
            return httpx.Response(404, json={})
        return httpx.Response(200, json={"networks": [{"name": "x"}]})

    assert main(["network", "delete", "x"], transport=httpx.MockTransport(no_ids)) == 1
    err = capsys.readouterr().err
    assert "internal error in overcast: KeyError" in err and "--debug" in err
    assert "Traceback" not in err
