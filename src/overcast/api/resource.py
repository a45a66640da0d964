"""The API's resource schemas: how each Neutron attribute maps to the logical model.

A ``Schema`` lists its attributes (``Attr``): the Neutron name, the model field,
the converter, whether POST/PUT may set it.  Parsing a request body returns the
model field values or a 400 that names the attribute and the value; rendering
an object returns the Neutron dict.  Behaviour (invariants) lives in each
kind's module under ``kinds``, allocation in ``allocation``.  New objects get
their id from the create handler (``Seams.new_id``), not from parsing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from overcast.api import convert as cv
from overcast.api import grants, policy
from overcast.api.auth import Context
from overcast.api.errors import BadRequest
from overcast.api.repo import Repo
from overcast.model.types import Resource, _plain

MISSING: Any = object()
MAX_TAGS = 50  # tags in one body, as Neutron's tag extension limits them


@dataclass(frozen=True)
class Attr:
    name: str
    field: str | None = None  # model field; None: computed (read-only)
    convert: cv.Converter | None = None
    post: bool = True
    put: bool = True
    required: bool = False
    render: bool = True  # False: accepted on input only
    # Neutron's default ATTR_NOT_SPECIFIED: any value a create gives asks for
    # something (its policy rule applies), even the model's default
    unset_default: bool = False


def stored(name: str, conv: cv.Converter | None = None, **kw: Any) -> Attr:
    """An attribute stored in the model field of the same name (':' → '_')."""
    return Attr(name, name.replace(":", "_"), conv, **kw)


COMMON = (
    Attr("id", "id", cv.to_uuid, put=False),
    Attr("project_id", "project_id", cv.to_str(255), put=False),
    Attr("tenant_id", "project_id", cv.to_str(255), put=False),
    stored("name", cv.to_str(255)),
    stored("description", cv.to_str(255)),
    stored("tags", cv.list_of(cv.to_tag, MAX_TAGS)),
    Attr("created_at", "created_at", post=False, put=False),
    Attr("updated_at", "updated_at", post=False, put=False),
    Attr("revision_number", "revision_number", post=False, put=False),
)
# a kind without Neutron's standard attributes (RBAC policies): its id, its project
BARE = (Attr("id", "id", post=False, put=False), *COMMON[1:3])


def _same_project(body: dict[str, Any]) -> None:
    """Neutron's populate_project_info: a body naming both must name one project
    (else either key, in any order, would decide)."""
    if "project_id" in body and "tenant_id" in body and body["project_id"] != body["tenant_id"]:
        raise BadRequest("'project_id' and 'tenant_id' do not match")


@dataclass
class Schema:
    cls: type[Resource]
    member: str  # "network"
    collection: str  # "networks"
    path: str  # "/v2.0/networks"
    attrs: tuple[Attr, ...]
    extra: Callable[[Repo, Any, dict[str, Any]], None] | None = None  # fill computed attrs
    common: tuple[Attr, ...] = COMMON  # a kind of no project's has fewer
    # fill attrs whose value depends on the caller (``shared`` of an RBAC object)
    caller: Callable[[Context, Repo, Any, dict[str, Any]], None] | None = None
    caller_attrs: frozenset[str] = frozenset()  # the attrs ``caller`` fills
    standard: bool = True  # Neutron's standard attributes (name, tags, timestamps...)
    # the collection's other paths, served as ``path`` is: Neutron takes either
    # spelling of a collection ('-' or '_'), and clients use both
    aliases: tuple[str, ...] = ()
    by_name: dict[str, Attr] = field(init=False)

    def __post_init__(self) -> None:
        self.attrs = (self.common if self.standard else BARE) + self.attrs
        self.by_name = {a.name: a for a in self.attrs}

    def visible(self, ctx: Context, repo: Repo | None = None,
                writing: bool = False) -> Callable[[Any], bool]:
        """Whether ``ctx`` may see an object: the ``get_`` rule of ``policy``
        (``repo`` reads the parents some rules look at, and the RBAC grants);
        ``writing``: whether an update or delete finds it (``policy.visible``)."""
        if repo is None:
            return policy.visible(ctx, self.member, writing=writing)
        return policy.visible(ctx, self.member, repo.get, grants.of(repo), writing)

    def parse(self, ctx: Context, body: Any, creating: bool) -> dict[str, Any]:
        """Request body of one object → {model field: value}, or a 400 naming the problem."""
        if not isinstance(body, dict):
            raise BadRequest(f"Body of {self.member} must be a JSON object")
        unknown = sorted(set(body) - set(self.by_name))
        if unknown:
            raise BadRequest(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
        out: dict[str, Any] = {}
        verb = "POST" if creating else "PUT"
        for name, value in body.items():
            attr = self.by_name[name]
            if not (attr.post if creating else attr.put) or attr.field is None:
                raise BadRequest(f"Attribute '{name}' not allowed in {verb}")
            out[attr.field] = self._convert(attr, value)
        if creating:
            _same_project(body)
            missing = [a.name for a in self.attrs if a.required and a.name not in body]
            if missing:
                raise BadRequest(f"Failed to parse request. Required attribute "
                                 f"'{missing[0]}' not specified")
            self._owner(ctx, out)
        return out

    @staticmethod
    def _convert(attr: Attr, value: Any) -> Any:
        if attr.convert is None:
            return value
        try:
            return attr.convert(value)
        except ValueError as err:
            raise BadRequest(f"Invalid input for {attr.name}. Reason: {err}.") from None

    @staticmethod
    def _owner(ctx: Context, out: dict[str, Any]) -> None:
        """The caller's project unless the body names one; only an admin names
        another (Neutron's _validate_privileges: a 400, before any policy rule
        or lookup)."""
        named = out.get("project_id")
        if named and named != ctx.project_id and not ctx.is_admin:
            raise BadRequest("Specifying 'project_id' other than the authenticated project in "
                             "request is not allowed for the current user.")
        out["project_id"] = named or ctx.project_id

    def explicit(self, body: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        """The attributes of a create ``body`` that ask for something: one whose
        value is its default (``shared: false``) asks for nothing, so its policy
        rule does not apply (Neutron's rule for attributes on create), unless
        Neutron has no default for it (``unset_default``: ``distributed``)."""
        defaults = _defaults(self.cls)
        out = {}
        for name, value in body.items():
            attr = self.by_name.get(name)
            fld = attr.field if attr is not None else None
            if (attr is not None and fld is not None and not attr.unset_default
                    and fld in defaults and fields.get(fld, MISSING) == defaults[fld]):
                continue
            out[name] = value
        return out

    def stored_view(self, ctx: Context, names: set[str]) -> Callable[[Any], dict[str, Any]] | None:
        """A cheap partial rendering (just ``names``) if every one of them is a
        stored attribute this caller may see, else None.  Lets a listing filter,
        sort and cut a page before rendering only the page."""
        attrs = [self.by_name.get(n) for n in names]
        hidden = policy.hidden(ctx, self.member) | self.caller_attrs
        if not all(a is not None and a.field is not None and a.render and a.name not in hidden
                   for a in attrs):
            return None
        pairs = [(a.name, a.field) for a in attrs if a is not None and a.field is not None]
        return lambda obj: {name: _plain(getattr(obj, fld)) for name, fld in pairs}

    def render_for(self, ctx: Context, repo: Repo, obj: Any) -> dict[str, Any]:
        """The object as ``ctx`` may see it: without the attributes whose
        ``get_`` rule the caller fails (placement details for members)."""
        out = self.render(repo, obj)
        if self.caller is not None:
            self.caller(ctx, repo, obj, out)
        for name in policy.hidden(ctx, self.member):
            out.pop(name, None)
        return out

    def render(self, repo: Repo, obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for attr in self.attrs:
            if attr.field is not None and attr.render:
                out[attr.name] = _plain(getattr(obj, attr.field))
        if self.extra is not None:
            self.extra(repo, obj, out)
        return out


_DEFAULTS: dict[str, dict[str, Any]] = {}


def _defaults(cls: type[Resource]) -> dict[str, Any]:
    """Each model field's default value, for the fields that have one."""
    out = _DEFAULTS.get(cls.KIND)
    if out is None:
        out = _DEFAULTS[cls.KIND] = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = f.default_factory()
    return out
