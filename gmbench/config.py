"""Checked overrides of frozen config dataclasses, from suites (typed TOML) or `--set k=v` (strings)."""
from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

from gmbench.errors import GmbenchError

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _field_types(config_cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_cls)}


def _describe(annotation: Any) -> str:
    """What a value of ``annotation`` is, for error messages: "true or false", "'auto'", "none", "int"."""
    if annotation is bool:
        return "true or false"
    if annotation is type(None):
        return "none"
    if typing.get_origin(annotation) is typing.Literal:
        return " or ".join(map(repr, typing.get_args(annotation)))
    return getattr(annotation, "__name__", str(annotation))


def coerce(key: str, value: Any, annotation: Any, where: str) -> Any:
    """Return ``value`` as ``annotation`` or raise a GmbenchError naming the key."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        for arg in args:
            if arg is type(None) and (value is None or (isinstance(value, str) and value.lower() == "none")):
                return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(key, value, arg, where)
            except GmbenchError:
                continue
        raise GmbenchError(f"{where}: {key}={value!r} must be {' or '.join(map(_describe, args))}.")
    if origin is typing.Literal:
        if value in args:
            return value
        raise GmbenchError(f"{where}: {key}={value!r} must be one of {', '.join(map(repr, args))}.")
    if origin is dict:
        items = dict(_pairs(key, value, where)) if isinstance(value, str) else value
        if not isinstance(items, dict):
            raise GmbenchError(f"{where}: {key}={value!r} must be a table, e.g. {{ order = 2 }}.")
        return {str(k): coerce(key, v, args[1] if args else Any, where) for k, v in items.items()}
    if origin in (tuple, list):
        items = (value.split(",") if value.strip() else []) if isinstance(value, str) else value  # "" -> empty
        if not isinstance(items, (list, tuple)):
            raise GmbenchError(f"{where}: {key}={value!r} must be a list.")
        item_type = args[0] if args else Any
        coerced = [coerce(key, v.strip() if isinstance(v, str) else v, item_type, where) for v in items]
        return tuple(coerced) if origin is tuple else coerced
    if annotation is Any:
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif annotation is str:
        if isinstance(value, str):
            return value
    raise GmbenchError(
        f"{where}: {key}={value!r} has the wrong type; expected {getattr(annotation, '__name__', annotation)}."
    )


def _pairs(key: str, text: str, where: str) -> list[tuple[str, str]]:
    """``"order=2,eta=0"`` (a table written on the command line) -> [("order", "2"), ("eta", "0")]."""
    items = [item.partition("=") for item in text.split(",") if item.strip()]
    if not all(sep and name.strip() for name, sep, _ in items):
        raise GmbenchError(f"{where}: {key}={text!r} must be NAME=VALUE pairs separated by commas, e.g. order=2.")
    return [(name.strip(), value.strip()) for name, _, value in items]


def apply_overrides(config: Any, overrides: dict[str, Any], where: str = "config", allowed: set[str] | None = None) -> Any:
    """Return ``config`` with ``overrides`` applied after checking each key and type.

    ``allowed`` narrows the keys that may change (e.g. sampling-only fields).
    """
    types = _field_types(type(config))
    valid = set(types) if allowed is None else set(allowed) & set(types)
    changes = {}
    for key, value in overrides.items():
        if key not in valid:
            raise GmbenchError(f"{where}: unknown key {key!r}. Valid keys: {', '.join(sorted(valid)) or '(none)'}.")
        changes[key] = coerce(key, value, types[key], where)
    try:
        return dataclasses.replace(config, **changes)
    except (ValueError, TypeError, GmbenchError) as exc:  # __post_init__ validation in the Config
        raise GmbenchError(f"{where}: {exc}") from None


def parse_set_options(items: list[str]) -> dict[str, dict[str, str]]:
    """Parse ``--set model.lr=1e-4`` items into ``{"model": {"lr": "1e-4"}}`` (values stay strings)."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        scope, dot, name = key.strip().partition(".")
        if not sep or not dot or not scope or not name:
            raise GmbenchError(
                f"--set {item!r}: expected SCOPE.KEY=VALUE, e.g. model.lr=1e-4 (scope 'model' for every model, "
                "or a model name such as dcgan.lr=1e-4; 'budget', 'metrics', 'timing', 'curve' or 'speed' for suite settings)."
            )
        out.setdefault(scope, {})[name] = value.strip()
    return out


def check_range(config: Any, *names: str, low: float = -math.inf, high: float = math.inf,
                open_low: bool = False, open_high: bool = False) -> None:
    """Raise ValueError unless each named field (every item of a tuple field, which must not be empty) is a
    finite number in the range. Configs call it in ``__post_init__``; apply_overrides makes it a GmbenchError."""
    def within(v: Any) -> bool:
        return (isinstance(v, (int, float)) and math.isfinite(v) and (low < v if open_low else low <= v)
                and (v < high if open_high else v <= high))

    for name in names:
        value = getattr(config, name)
        items = value if isinstance(value, tuple) else (value,)
        if not items or not all(within(v) for v in items):
            what = "a non-empty list of finite numbers" if isinstance(value, tuple) else "a finite number"
            raise ValueError(f"{name} must be {what} {_interval(low, high, open_low, open_high)}, got {value!r}")


def _interval(low: float, high: float, open_low: bool, open_high: bool) -> str:
    """``>= 1``, ``> 0``, ``in [0, 1)``, ... for error messages."""
    if math.isinf(high):
        return f"{'>' if open_low else '>='} {low:g}"
    if math.isinf(low):
        return f"{'<' if open_high else '<='} {high:g}"
    return f"in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"


def config_to_dict(config: Any) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()}
