"""The declarative part shared by every resource family: a :class:`Spec` per
resource (where it lives, how it is listed) and the generic ``list``,
``show``, ``create``, ``set`` and ``delete`` commands built from it.

A resource module only says what is special about its resource: which
options map to which attributes, which filters its list accepts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from overcast.cli.client import Client, CliError
from overcast.cli.output import FORMATS, Column, Formatter, Listing, Record

Result = Listing | Record | None
Handler = Callable[[Client, argparse.Namespace], Result]
Body = dict[str, Any]
BodyFn = Callable[[Client, argparse.Namespace], Body]
SetFn = Callable[[Client, argparse.Namespace, Body], Body]
ParamsFn = Callable[[Client, argparse.Namespace], list[tuple[str, str]]]
Subparsers = Any  # argparse._SubParsersAction, which has no public name


@dataclass(frozen=True)
class Spec:
    """Where a resource lives in the API and how ``list`` shows it."""

    kind: str  # what users call it: "network", "security group"
    key: str  # singular body key: "network", "security_group"
    path: str  # collection path: "/v2.0/networks"
    columns: tuple[Column, ...]
    long_columns: tuple[Column, ...] = ()
    name_attr: str = "name"
    tags: bool = False
    show_formatters: dict[str, Formatter] = field(default_factory=dict)
    # adds to what ``show`` prints (a router's interfaces come from its ports)
    show_extra: Callable[[Client, Body], Body] | None = None

    @property
    def kinds(self) -> str:
        """What users call several of them: ``networks``, ``qos policies``."""
        return self.kind[:-1] + "ies" if self.kind.endswith("y") else self.kind + "s"

    @property
    def plural(self) -> str:
        """The list body's key: ``security_groups`` for ``/v2.0/security-groups``."""
        return self.path.rsplit("/", 1)[-1].replace("-", "_")

    def item(self, id_: str) -> str:
        return f"{self.path}/{id_}"

    def find(self, client: Client, value: str) -> Body:
        return client.find(self.path, self.key, value, kind=self.kind, name_attr=self.name_attr)

    def find_id(self, client: Client, value: str) -> str:
        return str(self.find(client, value)["id"])

    def list(self, client: Client, params: list[tuple[str, str]] | None = None) -> list[Body]:
        data = client.get(self.path, params=params or None)
        items = data.get(self.plural)
        if items is None:  # tolerate an unexpected collection key
            items = next((v for v in data.values() if isinstance(v, list)), [])
        return [dict(i) for i in items]


# --- parser helpers --------------------------------------------------------


def group(sub: Subparsers, name: str, help_: str) -> Subparsers:
    """A command word that only groups further words (``security group ...``)."""
    parser = sub.add_parser(name, help=help_, description=help_)
    inner = parser.add_subparsers(dest=f"{name}_verb", metavar="COMMAND")
    inner.required = True
    return inner


def command(
    sub: Subparsers, name: str, handler: Handler, help_: str, output: bool = True
) -> argparse.ArgumentParser:
    """A leaf command; ``output`` adds ``-f`` and ``-c``."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_, description=help_)
    parser.set_defaults(handler=handler)
    connection = parser.add_argument_group("connection (also accepted before the command)")
    # SUPPRESS: when not given here, the value given before the command stays
    connection.add_argument("--os-url", metavar="URL", default=argparse.SUPPRESS)
    connection.add_argument("--os-token", metavar="TOKEN", default=argparse.SUPPRESS)
    connection.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    if output:
        parser.add_argument("-f", "--format", choices=FORMATS, default="table",
                            help="output format (default: table)")
        parser.add_argument("-c", "--column", dest="columns", action="append", default=[],
                            metavar="COLUMN", help="show only this column (repeatable)")
    return parser


def toggle(parser: argparse.ArgumentParser, dest: str, on: str, off: str, what: str) -> None:
    """A pair of mutually exclusive flags setting ``dest`` to True/False (None if neither)."""
    flags(parser, dest, {on: True, off: False}, what)


def flags(parser: argparse.ArgumentParser, dest: str, consts: dict[str, Any], what: str) -> None:
    """Mutually exclusive flags, each setting ``dest`` to its constant (None if none given)."""
    box = parser.add_mutually_exclusive_group()
    for flag, const in consts.items():
        shown = ("yes" if const else "no") if isinstance(const, bool) else const
        box.add_argument(flag, dest=dest, action="store_const", const=const,
                         help=f"{what}: {shown}")
    parser.set_defaults(**{dest: None})


def kv(allowed: dict[str, str], required: Sequence[str] = ()) -> Callable[[str], dict[str, str]]:
    """An argparse type for ``key=value,key=value`` options; ``allowed`` maps
    the user's keys to the API's keys."""

    def parse(text: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for part in filter(None, text.split(",")):
            key, sep, value = part.partition("=")
            if not sep or key.strip() not in allowed:
                keys = ", ".join(allowed)
                raise argparse.ArgumentTypeError(f"'{part}': expected KEY=VALUE with KEY in {keys}")
            out[allowed[key.strip()]] = value.strip()
        missing = [k for k in required if allowed[k] not in out]
        if missing:
            raise argparse.ArgumentTypeError(f"'{text}': missing {', '.join(missing)}")
        return out

    return parse


def copy_given(args: argparse.Namespace, body: Body, mapping: dict[str, str]) -> Body:
    """Copy each given (not None) argument ``dest`` into ``body[attr]``."""
    for dest, attr in mapping.items():
        value = getattr(args, dest, None)
        if value is not None:
            body[attr] = value
    return body


# --- generic commands ------------------------------------------------------


def add_show(sub: Subparsers, spec: Spec) -> argparse.ArgumentParser:
    def show(client: Client, args: argparse.Namespace) -> Result:
        found = spec.find(client, args.target)
        if spec.show_extra is not None:
            found.update(spec.show_extra(client, found))
        return Record(found, spec.show_formatters)

    parser = command(sub, "show", show, f"Show a {spec.kind}")
    parser.add_argument("target", metavar=spec.kind.upper().replace(" ", "_"),
                        help=f"{spec.kind} (name or id)")
    return parser


def add_delete(sub: Subparsers, spec: Spec) -> argparse.ArgumentParser:
    def delete(client: Client, args: argparse.Namespace) -> Result:
        failed = 0
        for value in args.targets:
            try:
                client.delete(spec.item(spec.find_id(client, value)))
            except CliError as exc:
                failed += 1
                print(f"Failed to delete {spec.kind} '{value}': {exc}", file=sys.stderr)
        if failed:
            raise CliError(f"{failed} of {len(args.targets)} {spec.kinds} failed to delete")
        return None

    parser = command(sub, "delete", delete, f"Delete {spec.kind}(s)", output=False)
    parser.add_argument("targets", nargs="+", metavar=spec.kind.upper().replace(" ", "_"),
                        help=f"{spec.kind}(s) to delete (name or id)")
    return parser


def add_list(sub: Subparsers, spec: Spec, params: ParamsFn | None = None) -> argparse.ArgumentParser:
    def list_(client: Client, args: argparse.Namespace) -> Result:
        query = params(client, args) if params else []
        columns = spec.long_columns if getattr(args, "long", False) else spec.columns
        return Listing(columns, spec.list(client, query))

    parser = command(sub, "list", list_, f"List {spec.kinds}")
    if spec.long_columns:
        parser.add_argument("--long", action="store_true", help="list more columns")
    return parser


def add_create(sub: Subparsers, spec: Spec, body: BodyFn) -> argparse.ArgumentParser:
    def create(client: Client, args: argparse.Namespace) -> Result:
        fields = body(client, args)
        if spec.tags and getattr(args, "tags", None):
            fields["tags"] = args.tags
        created = client.post(spec.path, {spec.key: fields})
        return Record(dict(created.get(spec.key) or {}), spec.show_formatters)

    parser = command(sub, "create", create, f"Create a {spec.kind}")
    if spec.tags:
        add_tag_options(parser, clear=False)
    return parser


def add_set(sub: Subparsers, spec: Spec, body: SetFn, verb: str = "set") -> argparse.ArgumentParser:
    """``set`` (or ``unset``): PUT what ``body`` computes from the current
    object, then the tags if ``--tag``/``--no-tag``/``--all-tag`` were given."""

    def set_(client: Client, args: argparse.Namespace) -> Result:
        current = spec.find(client, args.target)
        fields = body(client, args, current)
        if fields:
            client.put(spec.item(current["id"]), {spec.key: fields})
        tags = _new_tags(args, list(current.get("tags") or []), verb)
        if spec.tags and tags is not None:
            client.put(spec.item(current["id"]) + "/tags", {"tags": tags})
        return None

    parser = command(sub, verb, set_, f"{verb.capitalize()} {spec.kind} properties", output=False)
    parser.add_argument("target", metavar=spec.kind.upper().replace(" ", "_"),
                        help=f"{spec.kind} to modify (name or id)")
    if spec.tags and verb == "set":
        add_tag_options(parser, clear=True)
    elif spec.tags:
        parser.add_argument("--tag", dest="tags", action="append", default=[], metavar="TAG",
                            help="tag to remove (repeatable)")
        parser.add_argument("--all-tag", dest="no_tag", action="store_true",
                            help="remove all tags")
    return parser


def _new_tags(args: argparse.Namespace, current: list[str], verb: str) -> list[str] | None:
    given, clear = getattr(args, "tags", None) or [], getattr(args, "no_tag", False)
    if not given and not clear:
        return None
    if verb == "unset":
        return [] if clear else [t for t in current if t not in given]
    return merged(current, given, clear)


def add_tag_options(parser: argparse.ArgumentParser, clear: bool) -> None:
    parser.add_argument("--tag", dest="tags", action="append", default=[], metavar="TAG",
                        help="tag to add (repeatable)")
    if clear:
        parser.add_argument("--no-tag", action="store_true",
                            help="clear existing tags (with --tag: replace them)")


def add_crud(
    sub: Subparsers, spec: Spec, params: ParamsFn | None = None
) -> dict[str, argparse.ArgumentParser]:
    """``list``, ``show`` and ``delete``, which need nothing resource-specific
    beyond list filters."""
    return {
        "list": add_list(sub, spec, params),
        "show": add_show(sub, spec),
        "delete": add_delete(sub, spec),
    }


def merged(current: Any, added: Sequence[Any] | None, clear: bool) -> list[Any] | None:
    """The new value of a list attribute after ``--x`` (add, repeatable) and
    ``--no-x`` (clear first); None when neither was given (leave it alone)."""
    if not added and not clear:
        return None
    out = [] if clear else list(current or [])
    out += [a for a in added or [] if a not in out]
    return out


def removed(current: Any, drop: Sequence[Any] | None) -> list[Any] | None:
    """The new value of a list attribute after ``unset --x`` (repeatable);
    a dict given matches every entry that has its keys and values, so
    ``--fixed-ip ip-address=A`` removes A whatever its subnet."""
    if not drop:
        return None

    def dropped(item: Any) -> bool:
        return any(
            item == d or (isinstance(item, dict) and isinstance(d, dict)
                          and d.items() <= item.items())
            for d in drop
        )

    return [item for item in current or [] if not dropped(item)]
