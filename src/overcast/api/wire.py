"""What crosses the API's edge, independent of the HTTP framework: a
``Request`` in, a ``Response`` out, the JSON body between them and the
``If-Match: revision_number=N`` precondition."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from overcast.api.errors import BadRequest, PreconditionFailed, TooLarge
from overcast.model.types import Resource


@dataclass
class Request:
    method: str
    path: str
    params: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    base_url: str = "http://127.0.0.1:9696"


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-able, or None for an empty body


def decode_body(raw: bytes, limit: int) -> Any:
    """The request body as JSON (``null`` when empty); 413 above ``limit`` bytes."""
    if len(raw) > limit:
        raise TooLarge(f"Request body of {len(raw)} bytes exceeds the limit of "
                       f"{limit} bytes")
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("Malformed request body: not valid JSON") from None


def unwrap(body: Any, member: str) -> Any:
    """The one object of a ``{"<member>": {...}}`` body."""
    if not isinstance(body, dict) or member not in body or len(body) != 1:
        raise BadRequest(f"Resource body required: expected {{\"{member}\": {{...}}}}")
    return body[member]


def check_revision(req: Request, member: str, obj: Resource) -> None:
    """``If-Match: revision_number=N`` must name the current revision (else 412)."""
    header = req.headers.get("if-match")
    if not header:
        return
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name != "revision_number":
            continue
        if not value.isdigit() or int(value) != obj.revision_number:
            raise PreconditionFailed(f"Constrained by {part.strip()} failed for {member} "
                                     f"{obj.id}, current revision is {obj.revision_number}.")
