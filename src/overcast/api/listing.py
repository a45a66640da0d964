"""One page of a collection as the caller may see it: filters, sorting,
``fields`` and pagination links (see ``query``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from overcast.api import meta, query
from overcast.api.auth import Context
from overcast.api.errors import not_found
from overcast.api.repo import Repo
from overcast.api.resource import Schema
from overcast.api.wire import Request

_OBJ = "\0obj"  # the object behind a cheap partial rendering in a listing


def page(ctx: Context, req: Request, schema: Schema, repo: Repo,
         parent: tuple[str, str] | None = None,
         prepare: Callable[[Repo], Repo] | None = None) -> dict[str, Any]:
    """The listing body; ``parent`` (field, id) keeps the objects below one parent.
    ``prepare`` runs once the query is known to be valid and returns the
    snapshot to list (one that may have changed, as listing security groups
    makes the caller's default group)."""
    q = query.parse(schema, req.params, meta.extra_attrs(schema))
    if prepare is not None:
        repo = prepare(repo)
    visible = schema.visible(ctx, repo)
    objs = [o for o in repo.all(schema.cls) if visible(o)
            and (parent is None or getattr(o, parent[0]) == parent[1])]
    marker = _marker(schema, q, objs)
    hidden = {k: f for k, f in meta.hidden_filters(schema).items() if k in q.filters}
    if hidden:  # filtered here, never rendered
        only = query.Query(filters={k: q.filters.pop(k) for k in hidden})
        objs = [o for o in objs
                if query.matches(only, {k: f(ctx, repo, o) for k, f in hidden.items()})]
    needed = {"id", *q.filters, *(k for k, _ in q.sort), *(["tags"] if q.tags else [])}
    view = schema.stored_view(ctx, needed)
    if view is not None:  # filter, sort and cut on stored values; render one page
        cheap = [{**view(o), _OBJ: o} for o in objs]
        cut, has_next, has_prev = query.page(q, [i for i in cheap if query.matches(q, i)],
                                             None if marker is None else view(marker))
        items = [schema.render_for(ctx, repo, i[_OBJ]) for i in cut]
    else:
        rendered = [schema.render_for(ctx, repo, o) for o in objs]
        items, has_next, has_prev = query.page(
            q, [i for i in rendered if query.matches(q, i)],
            None if marker is None else schema.render_for(ctx, repo, marker))
    out: dict[str, Any] = {schema.collection: [query.select(q, i) for i in items]}
    base = req.base_url.rstrip("/") + req.path
    out.update(query.links(base, schema.collection, q, items, has_next, has_prev, req.params))
    return out


# Neutron's core plugin looks a marker up as a show does (_get_network,
# _get_port, _get_router: 404 when the caller may not see it); its object
# layer (every other kind) pages from the start instead
MARKER_MUST_BE_SEEN = frozenset({"network", "port", "router"})


def _marker(schema: Schema, q: query.Query, objs: list[Any]) -> Any:
    """The object the request's marker names, among those the caller may see
    (its values place the page, whether or not it passes the filters); None
    without a marker, or for one the caller may not see."""
    if q.marker is None:
        return None
    found = next((o for o in objs if o.id == q.marker), None)
    if found is None and schema.member in MARKER_MUST_BE_SEEN:
        raise not_found(schema.cls.KIND, q.marker)
    return found
