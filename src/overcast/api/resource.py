"""The API's resource schemas: how each Neutron attribute maps to the logical model.

A ``Schema`` lists its attributes (``Attr``): the Neutron name, the model field,
the converter, whether POST/PUT may set it.  Parsing a request body returns the
model field values or a 400 that names the attribute and the value; rendering
an object returns the Neutron dict.  Behaviour (invariants) lives in each
kind's module under ``kinds``, allocation in ``allocation``.  New objects get
their id from the create handler (``Seams.new_id``), not from parsing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from overcast.api import convert as cv
from overcast.api.auth import Context
from overcast.api.errors import BadRequest, Forbidden
from overcast.api.repo import Repo
from overcast.model.types import Resource, _plain

MISSING: Any = object()


@dataclass(frozen=True)
class Attr:
    name: str
    field: str | None = None  # model field; None: computed (read-only)
    convert: cv.Converter | None = None
    post: bool = True
    put: bool = True
    required: bool = False
    admin_only: bool = False  # only an admin may set it
    admin_view: bool = False  # only an admin sees it (Neutron's policy for placement details)
    render: bool = True  # False: accepted on input only


def stored(name: str, conv: cv.Converter | None = None, **kw: Any) -> Attr:
    """An attribute stored in the model field of the same name (':' → '_')."""
    return Attr(name, name.replace(":", "_"), conv, **kw)


COMMON = (
    Attr("id", "id", cv.to_uuidish, put=False),
    Attr("project_id", "project_id", cv.to_str(255), put=False),
    Attr("tenant_id", "project_id", cv.to_str(255), put=False),
    stored("name", cv.to_str(255)),
    stored("description", cv.to_str(255)),
    stored("tags", cv.list_of(cv.to_tag)),
    Attr("created_at", "created_at", post=False, put=False),
    Attr("updated_at", "updated_at", post=False, put=False),
    Attr("revision_number", "revision_number", post=False, put=False),
)


@dataclass
class Schema:
    cls: type[Resource]
    member: str  # "network"
    collection: str  # "networks"
    path: str  # "/v2.0/networks"
    attrs: tuple[Attr, ...]
    extra: Callable[[Repo, Any, dict[str, Any]], None] | None = None  # fill computed attrs
    shared_field: str | None = None  # model field that makes an object visible to all
    # visible to all when this says its parent is shared (subnets of shared networks)
    shared_via: Callable[[Repo, Any], bool] | None = None
    by_name: dict[str, Attr] = field(init=False)

    def __post_init__(self) -> None:
        self.attrs = COMMON + self.attrs
        self.by_name = {a.name: a for a in self.attrs}

    def visible(self, ctx: Context, repo: Repo | None = None) -> Callable[[Any], bool]:
        shared = self.shared_field
        via = self.shared_via if repo is not None else None

        def check(obj: Any) -> bool:
            if ctx.may_see(obj.project_id, bool(shared and getattr(obj, shared))):
                return True
            return via is not None and via(repo, obj)  # type: ignore[arg-type]
        return check

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
            if attr.admin_only and not ctx.is_admin:
                raise Forbidden(f"Setting '{name}' is restricted to administrators")
            out[attr.field] = self._convert(attr, value)
        if creating:
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
        project = out.get("project_id") or ctx.project_id
        if project != ctx.project_id and not ctx.is_admin:
            raise Forbidden("Specifying 'project_id' or 'tenant_id' other than the "
                            "authenticated project in request requires admin privileges")
        out["project_id"] = project

    def stored_view(self, ctx: Context, names: set[str]) -> Callable[[Any], dict[str, Any]] | None:
        """A cheap partial rendering (just ``names``) if every one of them is a
        stored attribute this caller may see, else None.  Lets a listing filter,
        sort and cut a page before rendering only the page."""
        attrs = [self.by_name.get(n) for n in names]
        if not all(a is not None and a.field is not None and a.render
                   and (ctx.is_admin or not a.admin_view) for a in attrs):
            return None
        pairs = [(a.name, a.field) for a in attrs if a is not None and a.field is not None]
        return lambda obj: {name: _plain(getattr(obj, fld)) for name, fld in pairs}

    def render_for(self, ctx: Context, repo: Repo, obj: Any) -> dict[str, Any]:
        """The object as ``ctx`` may see it: without admin-only attributes for members."""
        out = self.render(repo, obj)
        if not ctx.is_admin:
            for attr in self.attrs:
                if attr.admin_view:
                    out.pop(attr.name, None)
        return out

    def render(self, repo: Repo, obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for attr in self.attrs:
            if attr.field is not None and attr.render:
                out[attr.name] = _plain(getattr(obj, attr.field))
        if self.extra is not None:
            self.extra(repo, obj, out)
        return out
