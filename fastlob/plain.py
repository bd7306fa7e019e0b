"""Configs as plain values (dicts, lists, numbers, strings) and back, for JSON files.

``to_plain`` writes a frozen dataclass or NamedTuple of scalars, tuples and nested configs as a
dict (a non-finite float as the string ``"inf"``, ``"-inf"`` or ``"nan"``: JSON has no such
numbers); ``from_plain`` reads one back by the class's type hints, so that
``from_plain(cls, to_plain(c)) == c``. Reading checks types only, naming the field (dotted from
the top, e.g. ``config.flow.size_max``); a missing field takes its default; an unknown one is an
error. Ranges are the owner's to check.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from typing import Any

from fastlob._checks import key_text, shown

_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
#: the longest list a config field may hold (checked before any element is read)
MAX_LIST_LENGTH = 100_000


def _fields(cls) -> dict[str, Any]:
    """Field name -> type hint of a dataclass or NamedTuple class."""
    return typing.get_type_hints(cls)


def is_config(cls) -> bool:
    return isinstance(cls, type) and (
        dataclasses.is_dataclass(cls) or (issubclass(cls, tuple) and hasattr(cls, "_fields"))
    )


def to_plain(value: Any) -> Any:
    """A config (or any value inside one) as plain, JSON-ready values."""
    if is_config(type(value)):
        return {name: to_plain(getattr(value, name)) for name in _fields(type(value))}
    if isinstance(value, (tuple, list)):
        return [to_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


def _describe(hint) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def from_plain(hint, value: Any, name: str, default: Any = None) -> Any:
    """``value`` read as the type ``hint`` (see the module docstring); ``TypeError`` naming
    ``name`` when it is not one. A config's missing fields are those of ``default`` (else of
    the class's own defaults), so that a nested config given in part keeps the rest of its
    parent's default (``MarketMakingConfig``'s flow, say, not ``FlowParams()``)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return from_plain(option, value, name, default)
            except TypeError as err:
                errors.append(str(err))
        raise TypeError(errors[0] if errors else f"{name} must not be null")
    if is_config(hint):
        if not isinstance(value, dict):
            raise TypeError(
                f"{name} must be an object of {hint.__name__} fields, got {shown(value)}"
            )
        fields = _fields(hint)
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise TypeError(
                f"{name} has no field {', '.join(map(key_text, unknown))} (its fields: "
                f"{', '.join(fields)})"
            )
        base = default if isinstance(default, hint) else hint()
        given = {
            k: from_plain(fields[k], v, f"{name}.{k}", getattr(base, k)) for k, v in value.items()
        }
        if dataclasses.is_dataclass(hint):
            return dataclasses.replace(base, **given)
        return base._replace(**given)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be a list, got {shown(value)}")
        if len(value) > MAX_LIST_LENGTH:
            raise ValueError(
                f"{name} holds {len(value)} elements, more than the {MAX_LIST_LENGTH} a config "
                "list may hold"
            )
        item = args[0]
        return tuple(from_plain(item, v, f"{name}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be true or false, got {shown(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an integer, got {shown(value)}")
        return int(value)
    if hint is float:
        if isinstance(value, str) and value in _NON_FINITE:
            return _NON_FINITE[value]
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(
                f'{name} must be a number (a non-finite one as "inf", "-inf" or "nan"), got '
                f"{shown(value)}"
            )
        try:
            return float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise ValueError(f"{name} is beyond the range of a float, got {shown(value)}") from None
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {shown(value)}")
        return value
    raise TypeError(
        f"{name}: cannot read a {_describe(hint)} from {shown(value)}"
    )  # pragma: no cover
