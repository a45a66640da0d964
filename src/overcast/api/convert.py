"""Converters from request values to model values.  Each raises ValueError with
a message that names the value; the caller adds the field name.  Numbers and
booleans sent as strings are accepted, as Neutron does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Converter = Callable[[Any], Any]


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(f"'{value}' is not a valid boolean value")


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"'{value}' is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError(f"'{value}' is not an integer")


def int_range(lo: int, hi: int) -> Converter:
    def convert(value: Any) -> int:
        n = to_int(value)
        if not lo <= n <= hi:
            raise ValueError(f"'{n}' is not in range {lo} through {hi}")
        return n
    return convert


def optional(conv: Converter) -> Converter:
    def convert(value: Any) -> Any:
        return None if value is None else conv(value)
    return convert


def to_str(max_len: int = 255) -> Converter:
    def convert(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"'{value}' is not a valid string")
        if len(value) > max_len:
            raise ValueError(f"'{value[:20]}...' exceeds maximum length of {max_len}")
        return value
    return convert


def one_of(*choices: Any) -> Converter:
    def convert(value: Any) -> Any:
        if value not in choices:
            raise ValueError(f"'{value}' is not in {list(choices)}")
        return value
    return convert


def list_of(conv: Converter) -> Converter:
    def convert(value: Any) -> tuple[Any, ...]:
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            raise ValueError(f"'{value}' is not a list")
        return tuple(conv(v) for v in value)
    return convert


def dict_of(keys: dict[str, Converter], required: tuple[str, ...] = ()) -> Converter:
    def convert(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValueError(f"'{value}' is not a dictionary")
        unknown = set(value) - set(keys)
        if unknown:
            raise ValueError(f"unrecognized keys {sorted(unknown)} in {value}")
        missing = [k for k in required if k not in value]
        if missing:
            raise ValueError(f"missing keys {missing} in {value}")
        return {k: keys[k](v) for k, v in value.items()}
    return convert


def to_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"'{value}' is not a dictionary")
    return value


def to_mac(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"'{value}' is not a valid MAC address")
    return value.lower().replace("-", ":")


def to_uuidish(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise ValueError(f"'{value}' is not a valid id")
    return value


def to_tag(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 255 or "," in value:
        raise ValueError(f"'{value}' is not a valid tag")
    return value
