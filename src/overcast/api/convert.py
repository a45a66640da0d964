"""Converters from request values to model values.  Each raises ValueError with
a message that names the value; the caller adds the field name.  Numbers and
booleans sent as strings are accepted, as Neutron does.

Every string a converter accepts is free of NUL and of lone surrogates (JSON
can carry ``"\\ud800"``; no store, file or kernel name can), and every address,
MAC and UUID comes out in one canonical spelling, so that equality checks
(is this IP taken, is this the gateway, is this MAC in use) see one value."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from overcast.model import ipam

Converter = Callable[[Any], Any]

SHOWN = 60  # characters of a value quoted in an error message
MAX_DEPTH = 32  # nesting of a free-form dict (binding:profile)
_SURROGATE = re.compile("[\ud800-\udfff]")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
                   r"|[0-9a-fA-F]{32}")
_REFERENCE = re.compile(r"[A-Za-z0-9._~-]{1,64}")
_MAC = re.compile(r"[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}")


def show(value: Any) -> str:
    """A value as an error message quotes it: short, and printable as UTF-8."""
    try:
        text = value if isinstance(value, str) else repr(value)
    except (ValueError, RecursionError):  # an int of more digits than str() allows
        text = f"<{type(value).__name__}>"
    if len(text) > SHOWN:
        text = text[:SHOWN] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def clean(value: str) -> str:
    """``value`` if it holds no NUL and no lone surrogate, else ValueError."""
    if "\x00" in value:
        raise ValueError(f"'{show(value)}' contains a NUL character")
    if _SURROGATE.search(value):
        raise ValueError(f"'{show(value)}' contains a lone surrogate (not a Unicode character)")
    return value


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(f"'{show(value)}' is not a valid boolean value")


def to_int(value: Any) -> int:
    """An int, or a string of ASCII digits (not '５' or '٣', which ``int`` reads)."""
    if isinstance(value, bool):
        raise ValueError(f"'{value}' is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii():
        try:
            return int(value.strip())
        except ValueError:  # also more digits than Python converts (4300)
            pass
    raise ValueError(f"'{show(value)}' is not an integer")


def int_range(lo: int, hi: int) -> Converter:
    def convert(value: Any) -> int:
        n = to_int(value)
        if not lo <= n <= hi:
            raise ValueError(f"'{show(n)}' is not in range {lo} through {hi}")
        return n
    return convert


def optional(conv: Converter) -> Converter:
    def convert(value: Any) -> Any:
        return None if value is None else conv(value)
    return convert


def to_str(max_len: int = 255) -> Converter:
    def convert(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"'{show(value)}' is not a valid string")
        if len(value) > max_len:
            raise ValueError(f"'{show(value[:20])}...' exceeds maximum length of {max_len}")
        return clean(value)
    return convert


def one_of(*choices: Any) -> Converter:
    def convert(value: Any) -> Any:
        if isinstance(value, list | dict) or value not in choices:
            raise ValueError(f"'{show(value)}' is not in {list(choices)}")
        return value
    return convert


def list_of(conv: Converter, max_len: int | None = None) -> Converter:
    """A list of ``conv`` values; with ``max_len``, of at most that many (Neutron's
    limits: 5 dns_nameservers, 20 host_routes, 10 allowed_address_pairs, 50 tags)."""
    def convert(value: Any) -> tuple[Any, ...]:
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            raise ValueError(f"'{show(value)}' is not a list")
        if max_len is not None and len(value) > max_len:
            raise ValueError(f"{len(value)} items exceed the limit of {max_len}")
        return tuple(conv(v) for v in value)
    return convert


def dict_of(keys: dict[str, Converter], required: tuple[str, ...] = ()) -> Converter:
    def convert(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValueError(f"'{show(value)}' is not a dictionary")
        unknown = set(value) - set(keys)
        if unknown:
            raise ValueError(f"unrecognized keys {show(sorted(unknown))} in {show(value)}")
        missing = [k for k in required if k not in value]
        if missing:
            raise ValueError(f"missing keys {missing} in {show(value)}")
        return {k: keys[k](v) for k, v in value.items()}
    return convert


def to_dict(value: Any) -> dict[str, Any]:
    """A free-form dict (``binding:profile``): any JSON, but clean strings and
    at most ``MAX_DEPTH`` deep."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"'{show(value)}' is not a dictionary")
    _check_tree(value, 0)
    return value


def _check_tree(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, str):
        clean(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_tree(k, depth + 1)
            _check_tree(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_tree(v, depth + 1)


def to_mac(value: Any) -> str:
    """Six octets of two hex digits each, separated by ':' or '-' (not both), as
    ``aa:bb:cc:dd:ee:ff``."""
    if not isinstance(value, str) or not _MAC.fullmatch(value):
        raise ValueError(f"'{show(value)}' is not a valid MAC address")
    return value.lower().replace("-", ":")


def to_uuid(value: Any) -> str:
    """A UUID (with or without dashes, any case) in its canonical form: lower
    case, dashed.  What a client may choose as an object's ``id``."""
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise ValueError(f"'{show(value)}' is not a valid UUID")
    return str(uuid.UUID(value))


def to_uuidish(value: Any) -> str:
    """A reference to an object by id: a UUID comes out canonical (so an upper-case
    spelling finds the object); any other short token of URL-safe characters is
    kept as given, to be answered with a 404 by the lookup.  Anything else (a
    '/', '%', a NUL, a lone surrogate, an empty or long string) is a 400."""
    if isinstance(value, str) and _UUID.fullmatch(value):
        return str(uuid.UUID(value))
    if not isinstance(value, str) or not _REFERENCE.fullmatch(value):
        raise ValueError(f"'{show(value)}' is not a valid UUID")
    return value


def to_tag(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 255 or "," in value:
        raise ValueError(f"'{show(value)}' is not a valid tag")
    return clean(value)


def to_ip(value: Any) -> str:
    """An IPv4 or IPv6 address (no zone suffix) in canonical form: ``2001:DB8::0:1``
    is ``2001:db8::1``."""
    try:
        return str(ipam.parse_address(clean(value) if isinstance(value, str) else value))
    except ValueError:
        raise ValueError(f"'{show(value)}' is not a valid IP address") from None


def to_cidr(value: Any) -> str:
    """A network in CIDR notation (no host bits, no zone) in canonical form."""
    if isinstance(value, str):
        clean(value)
    try:
        loose = ipam.parse_network(value, strict=False)
    except (ValueError, TypeError):
        raise ValueError(f"'{show(value)}' is not a valid IP subnet") from None
    try:
        return str(ipam.parse_network(value, strict=True))
    except ValueError:
        raise ValueError(f"'{show(value)}' has host bits set; did you mean '{loose}'?") from None


def to_ip_or_cidr(value: Any) -> str:
    """An address or, with a '/', a CIDR (allowed address pairs)."""
    return to_cidr(value) if isinstance(value, str) and "/" in value else to_ip(value)
