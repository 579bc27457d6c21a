"""The typed boundary: every value from outside checked for type, finiteness and range.

Flags arrive typed by the option parser but unchecked for finiteness (``--jitter Infinity``)
or range; run files, hardware files and config.json arrive as whatever TOML or JSON holds
(``tp = "eight"``, ``dropout = 2``, ``head_dim = 64.0``). Everything passes here before the
physics sees it, and anything wrong is a `UserError` naming field, value and rule.

- `check(value, annotation, field)` checks one value against a type annotation: ``bool`` (only
  true/false, not 1), ``int`` (not a bool, not 8.0), ``float`` (an int or float, finite),
  ``str``, ``Literal[...]``, ``X | None`` and tuples of those; it returns the value (an int
  given for a float becomes a float).
- `check_fields(cls, table, where)` does that for every key of `table` against the fields of
  the dataclass `cls` (unknown keys are errors), so a frozen config dataclass is its own schema.
- `number(value, field, ...)` is the range check for one number (finite, bounds).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Union

from hwprofiles.errors import UserError

_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _describe(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (Union, types.UnionType):
        arms = [a for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(_describe(a) for a in arms)
    if origin is tuple:
        return "a list"
    return _NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _matches(value: Any, annotation: Any) -> tuple[bool, Any]:
    """(fits, value as stored) for one annotation; complex annotations are not checked."""
    if annotation is Any:
        return True, value
    if annotation is type(None) or annotation is None:
        return value is None, value
    if annotation is bool:
        return isinstance(value, bool), value
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False, value
        return math.isfinite(value), float(value)
    if annotation is str:
        return isinstance(value, str), value
    origin = typing.get_origin(annotation)
    if origin is Literal:
        args = typing.get_args(annotation)
        return any(type(value) is type(a) and value == a for a in args), value
    if origin in (Union, types.UnionType):
        for arm in typing.get_args(annotation):
            ok, out = _matches(value, arm)
            if ok:
                return True, out
        return False, value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False, value
        args = typing.get_args(annotation)
        inner = args[0] if args else Any
        out = []
        for v in value:
            ok, conv = _matches(v, inner)
            if not ok:
                return False, value
            out.append(conv)
        return True, tuple(out)
    if origin in (dict, Mapping) or annotation in (dict, Mapping):
        return isinstance(value, Mapping), value
    return True, value  # a type this boundary does not know: left to the class itself


def check(value: Any, annotation: Any, field: str) -> Any:
    """`value` if it is of `annotation` (see the module docstring); else a `UserError`."""
    ok, out = _matches(value, annotation)
    if ok:
        return out
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(field, value, "must be a finite number")
    raise UserError(field, value, f"must be {_describe(annotation)}")


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The resolved type annotation of each field of the dataclass `cls`."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def check_fields(cls: type, table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """`table` checked against the fields of dataclass `cls`; unknown keys are errors."""
    if not isinstance(table, Mapping):
        raise UserError(where, table, "must be a table of key = value")
    known = field_types(cls)
    out = {}
    for key, value in table.items():
        if key not in known:
            raise UserError(f"{where}.{key}", rule=f"unknown key (known: {', '.join(known)})")
        out[key] = check(value, known[key], f"{where}.{key}")
    return out


def number(
    value: Any,
    field: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict: bool = False,
    integer: bool = False,
) -> Any:
    """A finite number (an integer with `integer`) within [minimum, maximum]; `strict` makes
    the minimum exclusive. Returns it as float (or int)."""
    value = check(value, int if integer else float, field)
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise UserError(field, value, f"must be {'>' if strict else '>='} {minimum:g}")
    if maximum is not None and value > maximum:
        raise UserError(field, value, f"must be <= {maximum:g}")
    return value
