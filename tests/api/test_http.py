"""The HTTP edge (Starlette app on an EmbeddedServer): links, errors, methods."""

from __future__ import annotations

import httpx
import pytest

from .helpers import assert_error


def test_versions_link_points_at_this_server(api_url: str) -> None:
    r = httpx.get(api_url + "/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["versions"][0]["links"][0]["href"] == api_url + "/v2.0/"


def test_pagination_links_are_absolute_and_followable(api_url: str) -> None:
    with httpx.Client(base_url=api_url) as c:
        made = {c.post("/v2.0/networks", json={"network": {"name": f"n{i}"}}).json()
                ["network"]["id"] for i in range(7)}
        url: str | None = api_url + "/v2.0/networks?limit=3&sort_key=name"
        seen: list[str] = []
        while url:
            assert url.startswith(api_url + "/v2.0/networks?")
            body = c.get(url).json()
            seen += [n["id"] for n in body["networks"]]
            url = next((link["href"] for link in body.get("networks_links", [])
                        if link["rel"] == "next"), None)
    assert sorted(seen) == sorted(made) and len(seen) == 7


def test_create_answers_201_and_delete_204_with_empty_body(api_url: str) -> None:
    r = httpx.post(api_url + "/v2.0/networks", json={"network": {"name": "x"}})
    assert r.status_code == 201
    r = httpx.delete(f"{api_url}/v2.0/networks/{r.json()['network']['id']}")
    assert r.status_code == 204 and r.content == b""


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/nothing-here", 404),
    ("GET", "/v2.0/networks/x/whatever", 404),
    ("PATCH", "/v2.0/networks", 405),
    ("DELETE", "/v2.0/networks", 405),
])
def test_errors_have_the_neutron_shape(api_url: str, method: str, path: str,
                                       status: int) -> None:
    assert_error(httpx.request(method, api_url + path), status)


def test_internal_error_is_a_neutron_500(api_server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    def boom(req):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret detail")

    monkeypatch.setattr(api_server.api, "handle", boom)
    r = httpx.get(api_server.url + "/v2.0/networks")
    err = assert_error(r, 500, type="HTTPInternalServerError")
    assert "secret detail" not in r.text and err["message"]


def test_form_encoded_body_is_rejected(api_url: str) -> None:
    r = httpx.post(api_url + "/v2.0/networks", data={"name": "x"})
    assert_error(r, 400, "JSON")
    assert httpx.get(api_url + "/v2.0/networks").json() == {"networks": []}


@pytest.mark.parametrize("method,path,size,slow", [
    ("GET", "/v2.0/ports", 0, True),  # a listing: in a worker thread
    ("GET", "/v2.0/qos/policies.json", 0, True),
    ("GET", "/v2.0/ports/abc", 0, False),  # one object: on the event loop
    ("POST", "/v2.0/ports", 100, False),
    ("POST", "/v2.0/ports", 70_000, True),  # a bulk body
    ("DELETE", "/v2.0/ports/abc", 0, False),
    ("DELETE", "/v2.0/security-groups/abc", 0, True),  # looks at every port
    ("DELETE", "/v2.0/qos/policies/abc", 0, True),
])
def test_which_requests_leave_the_event_loop(method: str, path: str, size: int, slow: bool) -> None:
    from overcast.api.app import _slow

    assert _slow(method, path, size) is slow
