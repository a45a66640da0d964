"""A thin client of the Overcast REST API (Neutron v2.0 shapes) for the CLI.

Everything that goes wrong talking to the server becomes a :class:`CliError`
whose message is what the user sees: the server's ``NeutronError.message``
with the HTTP status, or a sentence saying the server cannot be reached.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import httpx

DEFAULT_URL = "http://127.0.0.1:9696"
TIMEOUT = 30.0


class CliError(Exception):
    """A failure to report on stderr (no traceback) with exit code 1."""


class ApiError(CliError):
    """The server answered with an error status."""

    def __init__(self, status: int, message: str, type_: str = "") -> None:
        super().__init__(f"{message} (HTTP {status})")
        self.status = status
        self.type = type_
        self.message = message


def error_from_response(response: httpx.Response) -> ApiError:
    """Build an :class:`ApiError` from a Neutron-shaped (or any) error body."""
    message, type_ = "", ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        err = body.get("NeutronError")
        if isinstance(err, dict):
            message = str(err.get("message") or "")
            type_ = str(err.get("type") or "")
        elif isinstance(err, str):
            message = err
        elif "message" in body or "detail" in body:
            message = str(body.get("message") or body.get("detail"))
    if not message:
        message = response.text.strip() or response.reason_phrase or "error"
    return ApiError(response.status_code, message, type_)


class Client:
    """Synchronous HTTP client; ``transport`` is the seam tests inject."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = (url or os.environ.get("OVERCAST_URL") or DEFAULT_URL).rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise CliError(f"the API URL must start with http:// or https://, not '{self.url}' "
                           "(--os-url or OVERCAST_URL)")
        token = token or os.environ.get("OVERCAST_TOKEN")
        headers = {"Accept": "application/json"}
        if token:
            headers["X-Auth-Token"] = token
        self._http = httpx.Client(
            base_url=self.url, headers=headers, transport=transport, timeout=TIMEOUT
        )

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | list[tuple[str, str]] | None = None,
    ) -> dict[str, Any]:
        """Send one request; return the decoded JSON body ({} when empty)."""
        pairs = params.items() if isinstance(params, dict) else params or ()
        query = httpx.QueryParams(tuple(pairs)) if pairs else None
        try:
            response = self._http.request(method, path, json=body, params=query)
        except httpx.TransportError as exc:
            raise CliError(
                f"cannot reach the Overcast API at {self.url}: is `overcast server` running?"
                f" ({exc.__class__.__name__}: {exc})"
            ) from exc
        if response.status_code >= 400:
            raise error_from_response(response)
        if not response.content:
            return {}
        try:
            data = response.json()
        except ValueError as exc:
            raise CliError(f"the API answered {method} {path} with non-JSON content") from exc
        return data if isinstance(data, dict) else {"result": data}

    def get(
        self, path: str, params: dict[str, str] | list[tuple[str, str]] | None = None
    ) -> dict[str, Any]:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", path, body=body)

    def put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("PUT", path, body=body)

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    def find(
        self, path: str, key: str, value: str, *, kind: str = "", name_attr: str = "name"
    ) -> dict[str, Any]:
        """Find one object by id, else by exact name (like openstackclient).

        ``path`` is the collection path (``/v2.0/networks``), ``key`` the
        singular body key (``network``).  Exactly one match is required.
        """
        kind = kind or key.replace("_", " ")
        try:
            found = self.get(f"{path}/{quote(value, safe='')}")
            if isinstance(found.get(key), dict):
                return dict(found[key])
        except ApiError as exc:
            if exc.status not in (400, 404):
                raise
        listing = self.get(path, params={name_attr: value})
        matches = [
            item for item in _items(listing) if str(item.get(name_attr)) == value
        ]
        if not matches:
            raise CliError(f"No {kind} found for '{value}'")
        if len(matches) > 1:
            raise CliError(f"More than one {kind} exists with the name '{value}'")
        return dict(matches[0])

    def find_id(self, path: str, key: str, value: str, **kwargs: Any) -> str:
        return str(self.find(path, key, value, **kwargs)["id"])


def _items(listing: dict[str, Any]) -> list[dict[str, Any]]:
    """The list in a collection body ({"networks": [...]}), whatever its key."""
    for value in listing.values():
        if isinstance(value, list):
            return [v for v in value if isinstance(v, dict)]
    return []
