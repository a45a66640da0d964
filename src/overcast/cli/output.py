"""What commands print: ASCII box tables (like openstackclient), JSON, YAML,
bare values, shell assignments or CSV, with ``-c`` to pick columns.

Commands return a :class:`Listing` (list) or a :class:`Record` (show/create);
:func:`render` turns either into text.  Machine formats (json, yaml) carry the
raw API values; table and value formats carry the human rendering.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from overcast.cli.client import CliError

FORMATS = ("table", "json", "yaml", "value", "shell", "csv")

Formatter = Callable[[Any], str]


@dataclass(frozen=True)
class Column:
    """One column of a list: its header, the API attribute, how to show it."""

    header: str
    attr: str
    fmt: Formatter | None = None
    compute: Callable[[dict[str, Any]], Any] | None = None  # value made of several attributes

    def raw(self, item: dict[str, Any]) -> Any:
        return self.compute(item) if self.compute else item.get(self.attr)

    def text(self, item: dict[str, Any]) -> str:
        value = self.raw(item)
        return self.fmt(value) if self.fmt else format_value(value)


@dataclass(frozen=True)
class Listing:
    columns: Sequence[Column]
    rows: Sequence[dict[str, Any]]


@dataclass(frozen=True)
class Record:
    data: dict[str, Any]
    formatters: dict[str, Formatter] = field(default_factory=dict)


def format_dict(value: dict[str, Any]) -> str:
    return ", ".join(f"{k}='{format_value(v)}'" for k, v in sorted(value.items()))


def format_value(value: Any) -> str:
    """The human rendering of one API value (lists of dicts: one per line)."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, dict):
        return format_dict(value)
    if isinstance(value, list | tuple):
        if any(isinstance(v, dict) for v in value):
            return "\n".join(format_value(v) for v in value)
        return ", ".join(format_value(v) for v in value)
    return str(value)


def admin_state(value: Any) -> str:
    return "UP" if value else "DOWN"


def internal_external(value: Any) -> str:
    return "External" if value else "Internal"


def alive(value: Any) -> str:
    return ":-)" if value else "XXX"


def counter(value: Any) -> str:
    """A packet or byte count; empty when the server does not count (no
    overcast-firewall extension)."""
    return "" if value is None else str(value)


def enforcement(value: Any) -> str:
    """A port's ``overcast:firewall``: one line per host that enforces it."""
    if not value:
        return "not enforced on any host"
    lines = []
    for entry in value:
        host = entry.get("host", "?")
        if not entry.get("port_security"):
            lines.append(f"{host}: port security off (no filtering)")
            continue
        groups = ", ".join(entry.get("security_groups") or []) or "none (all traffic dropped)"
        lines.append(f"{host}: port security on, security groups {groups}")
        lines += [f"{host}: NOT enforced: {m}" for m in entry.get("not_enforced") or []]
    return "\n".join(lines)


def qos_enforcement(value: Any) -> str:
    """A port's ``overcast:qos``: what each host enforces of its policy, where."""
    if not value:
        return "no QoS enforced on any host"
    lines = []
    for entry in value:
        host = entry.get("host", "?")
        parts = []
        for direction in ("egress", "ingress"):
            limit = entry.get(direction)
            if limit:
                parts.append(f"{direction} {limit.get('max_kbps')} kbit/s "
                             f"(burst {limit.get('max_burst_kbps')} kbit) on {limit.get('device')}")
        if entry.get("dscp_mark") is not None:
            parts.append(f"DSCP {entry['dscp_mark']}")
        minimum = entry.get("minimum")
        if minimum:
            parts.append(f"egress minimum {minimum.get('min_kbps')} kbit/s guaranteed on "
                         f"{minimum.get('device')}")
        lines.append(f"{host}: policy {entry.get('policy_id')}: " + (", ".join(parts) or "nothing"))
        lines += [f"{host}: NOT enforced: {m}" for m in entry.get("not_enforced") or []]
    return "\n".join(lines)


# Fields shown the openstackclient way in ``show`` tables.
SHOW_FORMATTERS: dict[str, Formatter] = {"admin_state_up": admin_state}


def box_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain ASCII table; multi-line cells span several text lines."""
    split = [[cell.split("\n") for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in split:
        for i, lines in enumerate(row):
            widths[i] = max(widths[i], *(len(line) for line in lines))
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [rule, _line(headers, widths), rule]
    for row in split:
        height = max((len(lines) for lines in row), default=1)
        for n in range(height):
            out.append(_line([c[n] if n < len(c) else "" for c in row], widths))
    out.append(rule)
    return "\n".join(out)


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"


def _pick(columns: Sequence[Column], wanted: Sequence[str]) -> list[Column]:
    if not wanted:
        return list(columns)
    picked = []
    for name in wanted:
        match = [c for c in columns if name.lower() in (c.header.lower(), c.attr.lower())]
        if not match:
            known = ", ".join(c.header for c in columns)
            raise CliError(f"No column named '{name}' (columns: {known})")
        picked.append(match[0])
    return picked


def _record_columns(record: Record) -> list[Column]:
    formatters = {**SHOW_FORMATTERS, **record.formatters}
    return [Column(k, k, formatters.get(k)) for k in sorted(record.data)]


def _dump(data: Any, fmt: str) -> str:
    if fmt == "yaml":
        import yaml

        return str(yaml.safe_dump(data, default_flow_style=False, sort_keys=False)).rstrip("\n")
    return json.dumps(data, indent=2)


def _shell(cols: Sequence[Column], item: dict[str, Any]) -> str:
    """``name="value"`` lines for ``eval $(overcast network show -f shell blue)``."""
    lines = []
    for c in cols:
        name = re.sub(r"[^A-Za-z0-9_]", "_", c.attr)
        value = re.sub(r'(["\\$`])', r"\\\1", c.text(item))
        lines.append(f'{name}="{value}"')
    return "\n".join(lines)


def _csv(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue().rstrip("\n")


def _render_record(record: Record, fmt: str, columns: Sequence[str]) -> str:
    cols = _pick(_record_columns(record), columns)
    if fmt in ("json", "yaml"):
        return _dump({c.attr: c.raw(record.data) for c in cols}, fmt)
    if fmt == "value":
        return "\n".join(c.text(record.data) for c in cols)
    if fmt == "shell":
        return _shell(cols, record.data)
    rows = [[c.header, c.text(record.data)] for c in cols]
    return _csv(["Field", "Value"], rows) if fmt == "csv" else box_table(["Field", "Value"], rows)


def _render_listing(listing: Listing, fmt: str, columns: Sequence[str]) -> str:
    cols = _pick(listing.columns, columns)
    if fmt in ("json", "yaml"):
        return _dump([{c.header: c.raw(row) for c in cols} for row in listing.rows], fmt)
    if fmt == "shell":
        raise CliError("-f shell shows one object: use it with show or create")
    texts = [[c.text(row) for c in cols] for row in listing.rows]
    if fmt == "value":
        return "\n".join(" ".join(t.replace("\n", " ") for t in row) for row in texts)
    if fmt == "csv":
        return _csv([c.header for c in cols], texts)
    return box_table([c.header for c in cols], texts)


def render(result: Listing | Record, fmt: str = "table", columns: Sequence[str] = ()) -> str:
    """Render a command's result; empty string when nothing is to be printed."""
    if isinstance(result, Record):
        return _render_record(result, fmt, columns)
    return _render_listing(result, fmt, columns)
