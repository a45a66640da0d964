"""Every path the API answers, in one table: method and path pattern →
handler, with what the HTTP edge and the router need to know about each.

``ROUTES`` is built from ``registry`` (each collection, its members and their
tags) plus the paths below one object (port bindings, router interface
actions, the rules of QoS policies, address group actions) and the documents about the API.  A path
that matches some route but not with this method is 405, except below a
document (404, as nothing is there); a path no route matches is 404.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

from overcast.api import (
    bindings,
    forwarding_routes,
    handlers,
    identity,
    ip_availability,
    meta,
    quotas,
    tags,
)
from overcast.api import convert as cv
from overcast.api.errors import MethodNotAllowed, NotFound
from overcast.api.kinds import address_group, qos, rbac, subnetpool
from overcast.api.kinds import availability_zone as az
from overcast.api.registry import HANDLERS, Handlers
from overcast.api.session import Call
from overcast.api.wire import Response

Handler = Callable[[Call], Response]
_PARAM = re.compile(r"\{(\w+)(\*?)\}")  # {name}: one segment; {name*}: the rest


@dataclass(frozen=True)
class Route:
    method: str  # "*": any method
    pattern: str  # e.g. "/v2.0/ports/{id}/bindings/{host}/activate"
    handler: Handler = field(compare=False)
    slow: bool = False  # may stall the event loop's other connections: run in a worker
    public: bool = False  # answered without a token
    document: bool = False  # about the API: other methods find nothing here (404)
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", _compile(self.pattern))

    @property
    def bucket(self) -> tuple[int, str] | None:
        """Segment count and collection segment of the paths it matches (None:
        any count, for a pattern that takes the rest of the path)."""
        return None if "*}" in self.pattern else _bucket(self.pattern)


def _compile(pattern: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in _PARAM.finditer(pattern):
        out.append(re.escape(pattern[pos:m.start()]))
        out.append(f"(?P<{m[1]}>.+)" if m[2] else f"(?P<{m[1]}>[^/]+)")
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("".join(out))


def _bucket(path: str) -> tuple[int, str]:
    parts = path.split("/")
    return len(parts), parts[2] if len(parts) > 2 else parts[-1]


def normalize(path: str) -> str:
    """Without a trailing slash, and without ``.json`` below /v2.0/ (Neutron accepts both)."""
    path = path.rstrip("/") or "/"
    if path.endswith(".json") and path.startswith("/v2.0/"):
        path = path[: -len(".json")]
    return path


def _canonical(params: dict[str, str]) -> dict[str, str]:
    """Object ids in a path as in a body: a UUID in any spelling finds its object."""
    for name in ("id", "rule_id", "pf_id"):
        if name in params:
            try:
                params[name] = cv.to_uuidish(params[name])
            except ValueError:
                pass  # not an id anything has: the lookup answers 404
    return params


class Table:
    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = list(routes)
        self._buckets: dict[tuple[int, str], list[Route]] = {}
        self._rest: list[Route] = []
        for r in self.routes:
            bucket = r.bucket
            if bucket is None:
                self._rest.append(r)
            else:
                self._buckets.setdefault(bucket, []).append(r)

    def find(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]]:
        """The route for this request and the parameters its path matched;
        NotFound or MethodNotAllowed (naming the path as sent) if none."""
        path = normalize(raw_path)
        elsewhere = False  # the path is there, for other methods
        for route in (*self._buckets.get(_bucket(path), ()), *self._rest):
            m = route.regex.fullmatch(path)
            if m is None:
                continue
            if route.method in (method, "*"):
                return route, _canonical(m.groupdict())
            elsewhere = elsewhere or not route.document
        if elsewhere:
            raise MethodNotAllowed(f"{method} is not allowed on {raw_path}")
        raise NotFound(f"The resource could not be found: {raw_path}", type="HTTPNotFound")

    def is_slow(self, method: str, raw_path: str) -> bool:
        try:
            return self.find(method, raw_path)[0].slow
        except (NotFound, MethodNotAllowed):
            return False


# the table ------------------------------------------------------------------------
def _documents() -> list[Route]:
    return [
        Route("GET", "/", meta.versions, public=True, document=True),
        Route("GET", "/v2.0", meta.resources, public=True, document=True),
        Route("GET", "/openapi.json", meta.openapi_document, public=True, document=True),
        Route("GET", "/v2.0/extensions", meta.extensions, slow=True, document=True),
        Route("GET", "/v2.0/extensions/{alias*}", meta.extension, document=True),
        Route("GET", "/v2.0/qos/rule-types", meta.rule_types, document=True),
        Route("GET", "/v2.0/qos/rule-types/{type}", meta.rule_type, document=True),
    ]


def _collection(h: Handlers) -> list[Route]:
    """A collection, its members and (for a kind with tags) their tags; the
    same again at each of the collection's aliases."""
    coll, member = h.schema.path, h.schema.path + "/{id}"
    out = [Route("GET", coll, partial(handlers.list_collection, h), slow=True),
           Route("GET", member, partial(handlers.show, h))]
    if h.create is not None:
        out.append(Route("POST", coll, partial(handlers.create, h)))
    if h.update is not None:
        out.append(Route("PUT", member, partial(handlers.update, h), slow=h.slow_update))
    if h.delete is not None:  # some deletes look at every port
        out.append(Route("DELETE", member, partial(handlers.delete, h), slow=h.slow_delete))
    if h.tags:
        out += _tags(h, member)
        short = "/v2.0/" + coll.rsplit("/", 1)[1] + "/{id}"
        if short != member:  # Neutron's tags of QoS policies: /v2.0/policies/{id}/tags
            out += _tags(h, short)
    return out + [dataclasses.replace(r, pattern=alias + r.pattern.removeprefix(coll))
                  for alias in h.schema.aliases for r in out
                  if f"{r.pattern}/".startswith(f"{coll}/")]


def _tags(h: Handlers, member: str) -> list[Route]:
    return [Route("GET", member + "/tags", partial(tags.show_all, h)),
            Route("PUT", member + "/tags", partial(tags.replace_all, h)),
            Route("POST", member + "/tags", partial(tags.create_all, h)),  # tag-creation
            Route("DELETE", member + "/tags", partial(tags.clear_all, h)),
            Route("GET", member + "/tags/{tag}", partial(tags.show_one, h)),
            Route("PUT", member + "/tags/{tag}", partial(tags.add_one, h)),
            Route("DELETE", member + "/tags/{tag}", partial(tags.remove_one, h))]


def _below_one_object() -> list[Route]:
    port, rtr = "/v2.0/ports/{id}", "/v2.0/routers/{id}"
    group = address_group.SCHEMA.path + "/{id}"
    pool = subnetpool.SCHEMA.path + "/{id}"
    return [
        Route("GET", port + "/bindings", bindings.handle_list),
        Route("POST", port + "/bindings", bindings.handle_create),
        Route("PUT", port + "/bindings/{host}/activate", bindings.handle_activate),
        Route("DELETE", port + "/bindings/{host}", bindings.handle_delete),
        # anything else below bindings: 403 for members, else 405
        Route("*", port + "/bindings", bindings.handle_other),
        Route("*", port + "/bindings/{rest*}", bindings.handle_other),
        Route("PUT", rtr + "/add_router_interface", handlers.add_router_interface),
        Route("PUT", rtr + "/remove_router_interface", handlers.remove_router_interface),
        Route("PUT", rtr + "/add_extraroutes", handlers.add_extraroutes),
        Route("PUT", rtr + "/remove_extraroutes", handlers.remove_extraroutes),
        Route("PUT", group + "/add_addresses", handlers.add_addresses),
        Route("PUT", group + "/remove_addresses", handlers.remove_addresses),
        Route("PUT", pool + "/add_prefixes", handlers.add_prefixes),
        Route("PUT", pool + "/remove_prefixes", handlers.remove_prefixes),
        *(r for kind in qos.RULE_KINDS for r in _rules(kind)),
        *_forwardings(),
        Route("PUT", "/v2.0/trunks/{id}/add_subports", forwarding_routes.add_subports),
        Route("PUT", "/v2.0/trunks/{id}/remove_subports", forwarding_routes.remove_subports),
        Route("GET", "/v2.0/trunks/{id}/get_subports", forwarding_routes.get_subports),
        # no identity service here: clients looking a project up take its id as given
        Route("*", "/v2.0/tenants", rbac.no_identity),
        Route("*", "/v2.0/tenants/{rest*}", rbac.no_identity),
    ]


def _forwardings() -> list[Route]:
    """A floating IP's port forwardings."""
    coll = "/v2.0/floatingips/{id}/port_forwardings"
    fr = forwarding_routes
    return [Route("GET", coll, fr.list_forwardings),
            Route("POST", coll, fr.create_forwarding),
            Route("GET", coll + "/{pf_id}", fr.show_forwarding),
            Route("PUT", coll + "/{pf_id}", fr.update_forwarding),
            Route("DELETE", coll + "/{pf_id}", fr.delete_forwarding)]


def _reports() -> list[Route]:
    """Read-only views over the model that are no stored kind, and the
    auto-allocated topology of a project."""
    path = ip_availability.PATH
    topology = "/v2.0/auto-allocated-topology/{project_id}"
    return [Route("GET", path, ip_availability.list_all, slow=True),
            Route("GET", path + "/{id}", ip_availability.show),
            Route("GET", topology, handlers.show_auto_topology),
            Route("DELETE", topology, handlers.delete_auto_topology, slow=True),
            Route("GET", az.PATH, az.list_all),
            Route("GET", "/v2.0/log/loggable-resources", forwarding_routes.loggable_resources)]


def _rules(kind: qos.RuleKind) -> list[Route]:
    """The rules of one type below a QoS policy."""
    rules = kind.schema.path.replace("{parent_id}", "{id}")
    return [
        Route("GET", rules, partial(handlers.list_rules, kind)),
        Route("POST", rules, partial(handlers.create_rule, kind)),
        Route("GET", rules + "/{rule_id}", partial(handlers.show_rule, kind)),
        Route("PUT", rules + "/{rule_id}", partial(handlers.update_rule, kind)),
        Route("DELETE", rules + "/{rule_id}", partial(handlers.delete_rule, kind)),
    ]


def _quotas() -> list[Route]:
    """quotas and quota_details (the caller's own project first: it is no project id).
    The project is ``{project_id}``, not ``{id}``: a project id is kept as spelled
    (Keystone's are 32 hex digits, which ``_canonical`` would make a dashed UUID)."""
    path, project = quotas.PATH, quotas.PATH + "/{project_id}"
    return [Route("GET", path, quotas.list_all),
            Route("GET", path + "/project", quotas.own_project("project")),
            Route("GET", path + "/tenant", quotas.own_project("tenant")),
            Route("GET", project, quotas.show),
            Route("PUT", project, quotas.update),
            Route("DELETE", project, quotas.reset),
            Route("GET", project + "/default", quotas.show_default),
            Route("GET", project + "/details", quotas.show_details)]


def _identity() -> list[Route]:
    """The project lookups of Keystone's API the openstack CLI's quota commands make
    (no Neutron API: not in the OpenAPI document)."""
    path = identity.PATH
    return [Route("GET", path, identity.versions, document=True),
            Route("GET", path + "/v3", identity.version, document=True),
            Route("GET", path + "/v3/projects", identity.list_projects, document=True),
            Route("GET", path + "/v3/projects/{project_id}", identity.show_project, document=True)]


ROUTES = Table([*_documents(), *(r for h in HANDLERS.values() for r in _collection(h)),
                *_below_one_object(), *_reports(), *_quotas(), *_identity()])
