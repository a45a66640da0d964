"""The route table is the one list of paths: the OpenAPI document and the
HTTP edge's slow-path decision agree with it."""

from __future__ import annotations

import re

import pytest

from overcast.api.errors import MethodNotAllowed, NotFound
from overcast.api.openapi import document
from overcast.api.routes import ROUTES

_PARAM = re.compile(r"\{(\w+)\*?\}")


def _example(pattern: str) -> str:
    return _PARAM.sub(lambda m: f"x-{m[1]}", pattern)


def test_every_documented_operation_has_its_route() -> None:
    for path, ops in document("http://x")["paths"].items():
        for method in ops:
            route, _ = ROUTES.find(method.upper(), _example(path))
            assert route.pattern == path, (method, path, route.pattern)


def test_every_resource_route_is_documented() -> None:
    paths = document("http://x")["paths"]
    for route in ROUTES.routes:
        if route.document or route.method == "*":
            continue
        assert route.method.lower() in paths.get(route.pattern, {}), route


@pytest.mark.parametrize("method,path,error", [
    ("PATCH", "/v2.0/ports/abc/tags", MethodNotAllowed),  # tags are there, not for PATCH
    ("POST", "/v2.0/extensions", NotFound),  # a document: nothing else is there
    ("GET", "/v2.0/agents/h1/tags", NotFound),  # agents have no tags
    ("GET", "/v2.0/ports/abc/unknown", NotFound),
])
def test_a_path_without_its_route(method: str, path: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        ROUTES.find(method, path)


def test_the_path_parameters() -> None:
    route, params = ROUTES.find("PUT", "/v2.0/ports/p1/bindings/h1/activate.json")
    assert route.pattern == "/v2.0/ports/{id}/bindings/{host}/activate"
    assert params == {"id": "p1", "host": "h1"}
    _, params = ROUTES.find("GET", "/v2.0/extensions/a/b")
    assert params == {"alias": "a/b"}
