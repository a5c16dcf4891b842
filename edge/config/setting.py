"""How a setting is declared (default, description, bounds, choices) and checked wherever a section is made."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class SettingError(ValueError):
    """A single setting that is invalid; the loader adds the file, line and section to the message."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def setting(
    default: Any,
    doc: str,
    *,
    example: Any = None,
    minimum: float | None = None,
    maximum: float | None = None,
    pattern: tuple[str, str] | None = None,
    choices: Sequence[str] | None = None,
    exists: bool = False,
) -> Any:
    """A dataclass field with its documentation and checks.

    ``example`` is shown (commented out) in the example file for keys whose default is unset;
    ``minimum``/``maximum`` bound numbers; ``pattern`` is (regex matching the whole string, what it
    describes); ``choices`` lists the allowed strings (for a tuple, of each element); ``exists``
    asks the loader to check that a path exists.
    """
    metadata = {"doc": doc, "example": example, "minimum": minimum, "maximum": maximum, "pattern": pattern,
                "choices": tuple(choices) if choices is not None else None, "exists": exists}
    return dataclasses.field(default=default, metadata=metadata)


def check_value(value: object, field: dataclasses.Field[Any]) -> None:
    """Raise ValueError unless ``value`` is within the field's bounds, pattern and choices."""
    meta = field.metadata
    if isinstance(value, tuple):
        for item in value:
            check_value(item, field)
        return
    if isinstance(value, int | float) and not isinstance(value, bool):
        if meta["minimum"] is not None and value < meta["minimum"]:
            raise ValueError(f"must be at least {meta['minimum']}, got {value!r}")
        if meta["maximum"] is not None and value > meta["maximum"]:
            raise ValueError(f"must be at most {meta['maximum']}, got {value!r}")
    if isinstance(value, str):
        if meta["choices"] is not None and value not in meta["choices"]:
            raise ValueError(f"must be one of {', '.join(map(repr, meta['choices']))}, got {value!r}")
        if meta["pattern"] is not None and not re.fullmatch(meta["pattern"][0], value):
            raise ValueError(f"must be {meta['pattern'][1]}, got {value!r}")


def check_exists(value: object, field: dataclasses.Field[Any]) -> None:
    """Raise ValueError when the field asks for an existing path and ``value`` names none."""
    if isinstance(value, Path) and field.metadata["exists"] and not value.exists():
        raise ValueError(f"{value} does not exist")


class Section:
    """Base of every configuration section: the bounds of each setting hold however the section is made."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            try:
                check_value(getattr(self, field.name), field)
            except ValueError as exc:
                raise SettingError(field.name, str(exc)) from None
