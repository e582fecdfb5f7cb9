"""Rebuild real Telethon TL objects from `to_dict()` trees, so tests run on real Telegram data.

Accepts both the fixture format (datetimes as "2023-06-29 17:35:02.000000", bytes as base64) and
our own `json_safe` output (ISO datetimes with offset, base64 bytes). Which strings are dates or
bytes is read from each constructor's type annotations, with a list of known date names as backup.
Keys the installed Telethon layer does not know are dropped and reported via `dropped`.
"""

from __future__ import annotations

import base64
import inspect
import typing
from datetime import UTC, datetime
from functools import cache
from typing import Any

import telethon  # noqa: F401  (imports the patched custom Message classes into tl.types)
from telethon.tl import alltlobjects, types

KNOWN_DATE_FIELDS = frozenset({
    "date", "edit_date", "expires", "saved_date", "close_date", "until_date",
    "report_delivery_until_date", "subscription_until_date", "schedule_date", "was_online",
})


@cache
def tl_class(name: str) -> type:
    """The TL class called `name`: `telethon.tl.types` first (patched Message), then any namespace."""
    cls = getattr(types, name, None)
    if isinstance(cls, type):
        return cls
    candidates = [c for c in alltlobjects.tlobjects.values() if c.__name__ == name]
    types_first = [c for c in candidates if ".types" in c.__module__] or candidates
    if not types_first:
        raise KeyError(f"no TL class named {name!r} in this Telethon ({alltlobjects.LAYER=})")
    return types_first[0]


@cache
def _params(cls: type) -> dict[str, inspect.Parameter]:
    """Named constructor parameters of `cls` (empty for argument-less constructors)."""
    sig = inspect.signature(cls.__init__)
    return {
        name: p for name, p in sig.parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def _annotation_text(param: inspect.Parameter | None) -> str:
    """The parameter's annotation as text ('' when there is none)."""
    if param is None or param.annotation is inspect.Parameter.empty:
        return ""
    ann = param.annotation
    return ann if isinstance(ann, str) else repr(ann)


def parse_datetime(text: str) -> datetime:
    """Fixture or ISO datetime text -> aware UTC datetime."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _is_date(name: str, param: inspect.Parameter | None) -> bool:
    """Whether the field holds a datetime, by annotation or, failing that, by its name."""
    ann = _annotation_text(param)
    return "datetime" in ann or (not ann and name in KNOWN_DATE_FIELDS)


def _is_bytes(param: inspect.Parameter | None) -> bool:
    """Whether the field holds bytes (or a list of bytes), by annotation."""
    ann = _annotation_text(param)
    return "bytes" in ann


def _convert(name: str, value: Any, param: inspect.Parameter | None, dropped: list[str]) -> Any:
    """One field value: nested TL objects, lists, dates and base64 bytes."""
    if value is None:
        return None
    if isinstance(value, dict):
        return tl_from_dict(value, dropped=dropped) if "_" in value else value
    if isinstance(value, list):
        return [_convert(name, v, param, dropped) for v in value]
    if isinstance(value, str):
        if _is_date(name, param):
            return parse_datetime(value)
        if _is_bytes(param):
            return base64.b64decode(value)
    return value


def tl_from_dict(data: dict[str, Any], *, dropped: list[str] | None = None) -> Any:
    """Rebuild the TL object a `to_dict()` described (recursively).

    Keys the installed constructor does not accept (fields from another layer) are skipped and,
    when `dropped` is given, appended to it as "Class.field".
    """
    if dropped is None:
        dropped = []
    cls = tl_class(data["_"])
    params = _params(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key == "_":
            continue
        param = params.get(key)
        if param is None:
            dropped.append(f"{cls.__name__}.{key}")
            continue
        kwargs[key] = _convert(key, value, param, dropped)
    for name, p in params.items():  # required fields another layer lacked: fill a neutral value
        if name not in kwargs and p.default is inspect.Parameter.empty:
            kwargs[name] = _neutral(p)
    return cls(**kwargs)


def _neutral(param: inspect.Parameter) -> Any:
    """A stand-in for a required field missing from the dict: [] for lists, else None."""
    origin = typing.get_origin(param.annotation)
    return [] if origin is list or "List[" in _annotation_text(param) else None


__all__ = ["KNOWN_DATE_FIELDS", "parse_datetime", "tl_class", "tl_from_dict"]
