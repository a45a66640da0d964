"""Tags of one object (Neutron's ``standard-attr-tag``): replace all, add
several (``tag-creation``), clear all, show all or one, add one, remove one.  Only the owner may change them."""

from __future__ import annotations

from collections.abc import Callable

from overcast.api import convert as cv
from overcast.api import policy, resource
from overcast.api.errors import BadRequest, NotFound
from overcast.api.registry import Handlers
from overcast.api.repo import Repo
from overcast.api.session import Call
from overcast.api.wire import Response, check_revision

MAX_TAGS = resource.MAX_TAGS
Change = Callable[[tuple[str, ...]], tuple[str, ...]]


def show_all(h: Handlers, call: Call) -> Response:
    repo = call.read()
    obj = repo.must(h.schema.cls, call.params["id"], h.schema.visible(call.ctx, repo))
    return Response(200, {"tags": list(obj.tags)})


def show_one(h: Handlers, call: Call) -> Response:
    repo = call.read()
    obj = repo.must(h.schema.cls, call.params["id"], h.schema.visible(call.ctx, repo))
    if call.params["tag"] not in obj.tags:
        raise _missing(h, call)
    return Response(204)


def _body_tags(call: Call) -> tuple[str, ...]:
    body = call.body()
    if not isinstance(body, dict) or set(body) != {"tags"}:
        raise BadRequest("Expected a body {\"tags\": [...]}")
    try:
        return tuple(dict.fromkeys(cv.list_of(cv.to_tag, MAX_TAGS)(body["tags"])))
    except ValueError as err:
        raise BadRequest(f"Invalid input for tags. Reason: {err}.") from None


def replace_all(h: Handlers, call: Call) -> Response:
    new = _body_tags(call)
    return Response(200, {"tags": _change(h, call, lambda tags: new)})


def create_all(h: Handlers, call: Call) -> Response:
    """Neutron's tag-creation: POST adds the body's tags the object lacks (the
    ones it has stay; idempotent) and answers 201 with the tags it was sent."""
    new = _body_tags(call)
    _change(h, call, lambda tags: (*tags, *(t for t in new if t not in tags)))
    return Response(201, {"tags": list(new)})


def add_one(h: Handlers, call: Call) -> Response:
    try:
        tag = cv.to_tag(call.params["tag"])
    except ValueError as err:
        raise BadRequest(f"Invalid input for tag. Reason: {err}.") from None
    _change(h, call, lambda tags: tags if tag in tags else (*tags, tag))
    return Response(201)


def clear_all(h: Handlers, call: Call) -> Response:
    _change(h, call, lambda tags: ())
    return Response(204)


def remove_one(h: Handlers, call: Call) -> Response:
    tag = call.params["tag"]

    def change(tags: tuple[str, ...]) -> tuple[str, ...]:
        if tag not in tags:
            raise _missing(h, call)
        return tuple(t for t in tags if t != tag)
    _change(h, call, change)
    return Response(204)


def _missing(h: Handlers, call: Call) -> NotFound:
    return NotFound(f"Tag {call.params['tag']} could not be found for {h.schema.member} "
                    f"{call.params['id']}.", type="TagNotFound")


def _change(h: Handlers, call: Call, change: Change) -> list[str]:
    schema, id_ = h.schema, call.params["id"]

    def apply(repo: Repo) -> list[str]:
        obj = repo.must(schema.cls, id_, schema.visible(call.ctx, repo))
        check_revision(call.req, schema.member, obj)
        tags = change(tuple(obj.tags))
        # the same rules as a PUT of the object with these tags
        policy.authorize(call.ctx, "update", schema.member,
                         policy.target(schema.member, obj, repo.get), {"tags": list(tags)},
                         f"{schema.member} {obj.id}")
        if len(tags) > MAX_TAGS:
            raise BadRequest(f"Too many tags: at most {MAX_TAGS}")
        return list(repo.save(obj.replace(tags=tags)).tags)
    return call.write(apply)
