"""What crosses the API's edge, independent of the HTTP framework: a
``Request`` in, a ``Response`` out, the JSON body between them and the
``If-Match: revision_number=N`` precondition."""

from __future__ import annotations

import json
import re
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


MAX_DEPTH = 32  # arrays and objects inside one another; Neutron's bodies need 4
_TOO_DEEP: Any = object()
_SURROGATE = re.compile("[\ud800-\udfff]")


def decode_body(raw: bytes, limit: int) -> Any:
    """The request body as JSON (``null`` when empty); 413 above ``limit`` bytes.

    400 for anything else than UTF-8 JSON, for nesting deeper than ``MAX_DEPTH``
    (json itself refuses a few thousand levels at once; the rest is one walk), for
    NaN and Infinity (not JSON) and for a string holding a lone surrogate
    (``"\\ud800"`` is valid JSON but no character: nothing can store it)."""
    if len(raw) > limit:
        raise TooLarge(f"Request body of {len(raw)} bytes exceeds the limit of "
                       f"{limit} bytes")
    try:
        text = raw.decode("utf-8") if raw else "null"
    except UnicodeDecodeError:
        raise BadRequest("Malformed request body: not valid JSON (not UTF-8)") from None
    try:  # json's own recursion guard stops deep nesting within its first thousand levels
        body = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        body = _TOO_DEEP
    except ValueError:
        raise BadRequest("Malformed request body: not valid JSON") from None
    if body is _TOO_DEEP or _too_deep(body):
        raise BadRequest(f"Malformed request body: nested more than {MAX_DEPTH} levels deep")
    if "\\u" in text:  # only an escape can make a lone surrogate
        where = _surrogate_at(body, "")
        if where is not None:
            raise BadRequest(f"Invalid input for {where or 'the body'}. Reason: a lone "
                             "surrogate is not a Unicode character.")
    return body


def _too_deep(body: Any) -> bool:
    """Whether arrays and objects nest deeper than ``MAX_DEPTH`` (a walk with
    its own stack: linear in the body, whatever its shape)."""
    stack = [(body, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        elif not isinstance(value, list):
            continue
        if depth >= MAX_DEPTH:
            return True
        stack.extend((item, depth + 1) for item in value if isinstance(item, list | dict))
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _surrogate_at(value: Any, path: str) -> str | None:
    """The path (``port.fixed_ips[0].subnet_id``) of a key or string holding a
    lone surrogate, if any."""
    if isinstance(value, str):
        return path if _SURROGATE.search(value) else None
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _surrogate_at(item, f"{path}[{i}]")
            if found is not None:
                return found
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else key
            if _SURROGATE.search(key):
                return path or "the body"
            found = _surrogate_at(item, sub)
            if found is not None:
                return found
    return None


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
