"""Reading the configuration: TOML files and ``--set`` overrides, checked strictly.

A TOML file may set any subset of the keys; unknown sections or keys, values of the wrong type
and values out of range are refused with a message that names the file, the line and the key.
``--set section.key=value`` overrides are parsed with TOML value syntax (a bare word that is not
valid TOML is taken as a string; an empty value unsets an optional key). Relative paths in a
file are taken relative to the file's directory.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from edge.config.schema import SECTIONS, Config
from edge.config.setting import SettingError, check_exists
from edge.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 on older JetPacks
    import tomli as tomllib


class ConfigError(InputError):
    """A configuration file or override that cannot be used (syntax, unknown key, wrong type or range)."""


_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", Path: "a path (string)"}


def _unknown(kind: str, name: str, known: Iterable[str]) -> str:
    names = list(known)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"unknown {kind} ({hint}known: {', '.join(names)})"


def _describe(value: object) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "table"}
    return f"{value!r} ({kind.get(type(value), type(value).__name__)})"


def _optional_inner(hint: Any) -> Any | None:
    """``X | None`` -> X; anything else -> None."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0]
    return None


def _coerce(value: object, hint: Any, field: dataclasses.Field[Any], base: Path | None) -> object:
    """Check ``value`` against the field's type and limits; return it in the field's type. Raises ValueError."""
    inner = _optional_inner(hint)
    if inner is not None:
        return None if value is None else _coerce(value, inner, field, base)
    if value is None:
        raise ValueError("must be set (it has no unset state)")
    origin = typing.get_origin(hint)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, list | tuple):
            raise ValueError(f"must be an array of {_TYPE_NAMES[item]}s, got {_describe(value)}")
        return tuple(_coerce(element, item, field, base) for element in value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if hint is Path and isinstance(value, str | Path):
        path = Path(value).expanduser()
        value = base / path if base is not None and not path.is_absolute() else path
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ValueError(f"must be {_TYPE_NAMES[hint]}, got {_describe(value)}")
    check_exists(value, field)
    return value


def _build_section(section: str, values: Mapping[str, object], base: Path | None, where: _Locator) -> Any:
    cls = SECTIONS[section]
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    converted: dict[str, object] = {}
    for key, value in values.items():
        if key not in known:
            raise where.error(section, key, _unknown("key", key, known))
        try:
            converted[key] = _coerce(value, hints[key], known[key], base)
        except ValueError as exc:
            raise where.error(section, key, str(exc)) from None
    try:
        return cls(**converted)
    except SettingError as exc:
        raise where.error(section, exc.key, exc.problem) from None


_HEADER = re.compile(r"^\s*\[\s*([^\]\s]+)\s*\]")


class _Locator:
    """Turns a section/key into ``file:line: section.key: problem`` by scanning the file's text.

    tomllib reports no positions for valid TOML, so the key is looked up under its ``[section]``
    header (or as a dotted ``section.key`` / inline table entry).
    """

    def __init__(self, origin: str, text: str | None, origins: Mapping[str, str] | None = None) -> None:
        self.origin = origin
        self.origins = dict(origins or {})   # "section.key" -> where that value came from, when not ``origin``
        self.lines = [] if text is None else text.splitlines()

    def line_of(self, section: str, key: str | None) -> int | None:
        if key is None:
            in_section = None
            at_root = re.compile(rf"^\s*{re.escape(section)}\s*[.=]")
        else:
            name = rf"""(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')"""
            in_section = re.compile(rf"^\s*{name}\s*=")
            at_root = re.compile(rf"^\s*{re.escape(section)}\s*(?:\.\s*{name}\s*=|=.*[{{,]\s*{name}\s*=)")
        header_wanted = section if key is None else f"{section}.{key}"
        current = ""
        for number, line in enumerate(self.lines, start=1):
            header = _HEADER.match(line)
            if header:
                current = header.group(1)
                if current == header_wanted:
                    return number
            elif (current == section and in_section is not None and in_section.match(line)) or (
                current == "" and at_root.match(line)
            ):
                return number
        return None

    def error(self, section: str, key: str | None, problem: str) -> ConfigError:
        name = section if key is None else f"{section}.{key}"
        line = self.line_of(section, key)
        origin = self.origins.get(name, self.origin)
        position = f"{origin}:{line}" if line is not None else origin
        return ConfigError(f"{position}: {name}: {problem}")


def _from_tables(tables: Mapping[str, object], base: Path | None, where: _Locator) -> Config:
    sections: dict[str, object] = {}
    for section, values in tables.items():
        if section not in SECTIONS:
            raise where.error(section, None, _unknown("section", section, SECTIONS))
        if not isinstance(values, dict):
            raise where.error(section, None, f"must be a table [{section}], got {_describe(values)}")
        sections[section] = _build_section(section, values, base, where)
    return Config(**sections)  # type: ignore[arg-type]


def load_config(path: str | Path) -> Config:
    """Read a TOML config file; every key not in the file keeps its default. Raises ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc})") from exc
    try:
        tables = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return _from_tables(tables, path.resolve().parent, _Locator(str(path), text))


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """``["output.prefix=lab", ...]`` (from ``--set``) -> ``{"output.prefix": "lab"}``. Raises ConfigError."""
    overrides: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key.strip().count(".") != 1:
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. output.prefix=lab")
        overrides[key.strip()] = value.strip()
    return overrides


def _override_value(raw: object, hint: Any) -> object:
    """A string from the command line in the field's type: TOML value syntax, else the bare string."""
    if not isinstance(raw, str):
        return raw
    if raw == "" and _optional_inner(hint) is not None:
        return None
    target = _optional_inner(hint) or hint
    if target in (str, Path):
        try:
            parsed = tomllib.loads(f"value = {raw}")["value"]
        except tomllib.TOMLDecodeError:
            return raw
        return parsed if isinstance(parsed, str) else raw
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        return raw


def apply_overrides(
    config: Config, overrides: Mapping[str, object], origins: Mapping[str, str] | None = None
) -> Config:
    """Return ``config`` with ``{"section.key": value}`` applied; string values use TOML syntax. Raises ConfigError
    naming where the offending value came from: ``origins[key]`` (a command-line flag), else ``--set``."""
    where = _Locator("--set", None, origins)
    changed: dict[str, dict[str, object]] = {}
    for name, raw in overrides.items():
        section, _, key = name.partition(".")
        if section not in SECTIONS:
            raise where.error(section, None, _unknown("section", section, SECTIONS))
        hints = typing.get_type_hints(SECTIONS[section])
        if key not in hints:
            raise where.error(section, key, _unknown("key", key, hints))
        changed.setdefault(section, {})[key] = _override_value(raw, hints[key])
    sections: dict[str, object] = {}
    for section, values in changed.items():
        current = dataclasses.asdict(getattr(config, section))
        sections[section] = _build_section(section, {**current, **values}, None, where)
    return dataclasses.replace(config, **sections)  # type: ignore[arg-type]


