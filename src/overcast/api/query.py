"""List queries as Neutron answers them: filters on any attribute (a repeated
key means OR), tag filters, ``fields``, ``sort_key``/``sort_dir`` and
``limit``/``marker``/``page_reverse`` with ``<collection>_links``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urlencode

from overcast.api.errors import BadRequest
from overcast.api.resource import Schema

TAG_FILTERS = {"tags", "tags-any", "not-tags", "not-tags-any"}


@dataclass
class Query:
    filters: dict[str, list[str]] = field(default_factory=dict)
    tags: dict[str, set[str]] = field(default_factory=dict)
    fields: list[str] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (key, descending)
    limit: int | None = None
    marker: str | None = None
    reverse: bool = False


def parse(schema: Schema, items: Iterable[tuple[str, str]], extra_names: set[str]) -> Query:
    q = Query()
    known = set(schema.by_name) | extra_names
    keys: list[str] = []
    dirs: list[str] = []
    for key, value in items:
        if key == "fields":
            q.fields.append(value)
        elif key == "sort_key":
            if value not in known:
                raise BadRequest(f"{value} is an invalid attribute for sort_key")
            keys.append(value)
        elif key == "sort_dir":
            if value not in ("asc", "desc"):
                raise BadRequest(f"{value} is an invalid value for sort_dir, valid values are "
                                 "'asc' and 'desc'")
            dirs.append(value)
        elif key == "limit":
            q.limit = _limit(value)
        elif key == "marker":
            q.marker = value
        elif key == "page_reverse":
            q.reverse = value.lower() == "true"
        elif key in TAG_FILTERS:
            q.tags.setdefault(key, set()).update(t for t in value.split(",") if t)
        elif key in known:
            q.filters.setdefault(key, []).append(value)
        else:
            raise BadRequest(f"[{key}] is invalid attribute for filtering")
    q.sort = _sort(keys, dirs)
    if q.limit is None:  # Neutron's get_limit_and_marker: no limit, no marker
        q.marker = None
    return q


def _sort(keys: list[str], dirs: list[str]) -> list[tuple[str, bool]]:
    if dirs and len(dirs) != len(keys):
        raise BadRequest("The number of sort_keys and sort_dirs must be same")
    return [(k, (dirs[i] if dirs else "asc") == "desc") for i, k in enumerate(keys)]


def _limit(value: str) -> int | None:
    try:
        n = int(value)
    except ValueError:
        raise BadRequest(f"Limit must be an integer 0 or greater and not '{value}'") from None
    if n < 0:
        raise BadRequest(f"Limit must be an integer 0 or greater and not '{value}'")
    return n or None


def matches(q: Query, item: dict[str, Any]) -> bool:
    for key, wanted in q.filters.items():
        if not any(_match_one(item.get(key), w) for w in wanted):
            return False
    tags = set(item.get("tags") or ())
    checks: dict[str, Callable[[set[str]], bool]] = {
        "tags": lambda want: want <= tags,
        "tags-any": lambda want: bool(want & tags),
        "not-tags": lambda want: not want <= tags,
        "not-tags-any": lambda want: not want & tags,
    }
    return all(checks[k](v) for k, v in q.tags.items())


def _match_one(value: Any, wanted: str) -> bool:
    if isinstance(value, list):
        if value and isinstance(value[0], dict) and "=" in wanted:
            sub, _, want = wanted.partition("=")
            return any(str(v.get(sub)) == want for v in value)
        return wanted in [str(v) for v in value]
    if isinstance(value, bool):
        return wanted.lower() == str(value).lower()
    if value is None:
        return wanted in ("", "None", "null")
    return str(value) == wanted


def _sort_value(item: dict[str, Any], *, key: str) -> tuple[int, Any]:
    value = item.get(key)
    if value is None:
        return (0, "")
    if isinstance(value, bool | int | float):
        return (1, value)
    return (2, str(value))


def page(q: Query, items: list[dict[str, Any]],
         marker: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], bool, bool]:
    """Sort and cut one page.  Returns (page, has_next, has_previous): a full
    page always has a next one (a previous one, going back), as Neutron's
    ``get_pagination_links``, whose clients walk until a page comes short.
    ``marker`` is the item the request's marker names: the page starts after
    it in the sort order (before it, going back), as Neutron's marker object
    places the page by its values, whether or not it passes the filters;
    without it (none the caller may see) the page starts at the start."""
    if marker is not None:
        items = [*(i for i in items if i.get("id") != marker.get("id")), marker]
    order = q.sort or [("id", False)]
    items = sorted(items, key=lambda i: i.get("id") or "")
    for key, desc in reversed(order):
        items.sort(key=partial(_sort_value, key=key), reverse=desc)
    if marker is not None:
        pos = next(n for n, i in enumerate(items) if i is marker)
        items = items[:pos] if q.reverse else items[pos + 1:]
    if q.limit is None:
        return items, False, q.marker is not None
    if q.reverse:
        return items[-q.limit:], q.marker is not None, len(items) >= q.limit
    return items[:q.limit], len(items) >= q.limit, q.marker is not None


def links(base: str, collection: str, q: Query, items: list[dict[str, Any]],
          has_next: bool, has_prev: bool, params: list[tuple[str, str]]) -> dict[str, Any]:
    if q.limit is None:
        return {}
    keep = [(k, v) for k, v in params if k not in ("marker", "page_reverse")]
    out = []
    if has_next:
        after = [("marker", items[-1]["id"])] if items else []  # empty: from the start
        out.append({"rel": "next", "href": f"{base}?{urlencode(keep + after)}"})
    if has_prev:
        before = [("marker", items[0]["id"])] if items else []  # empty: from the end
        prev = keep + before + [("page_reverse", "True")]
        out.append({"rel": "previous", "href": f"{base}?{urlencode(prev)}"})
    return {f"{collection}_links": out} if out else {}


def select(q: Query, item: dict[str, Any]) -> dict[str, Any]:
    if not q.fields:
        return item
    return {k: item[k] for k in q.fields if k in item}
