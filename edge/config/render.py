"""Writing the configuration back: TOML that loads to the same ``Config``, the documented example, check-config.

``python -m edge.config > systemd/config.example.toml`` regenerates the example from the schema,
so the example cannot drift from it.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from edge.config.loader import ConfigError, apply_overrides, load_config, parse_overrides
from edge.config.schema import EXAMPLE_OVERRIDES, Config


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def render_toml(config: Config, *, documented: bool = False, mask_secrets: bool = True) -> str:
    """The configuration as TOML that ``load_config`` reads back to ``config``.

    ``documented`` adds each key's description and default as comments, and shows unset keys as
    commented-out examples. ``mask_secrets`` prints the password as ``"***"``.
    """
    out: list[str] = []
    for section_field in dataclasses.fields(Config):
        section = getattr(config, section_field.name)
        if out:
            out.append("")
        if documented:
            out.append(f"# {type(section).__doc__}")
        out.append(f"[{section_field.name}]")
        for field in dataclasses.fields(section):
            value = getattr(section, field.name)
            if mask_secrets and field.name == "password" and value is not None:
                value = "***"
            if documented:
                out.append("")
                out.extend(f"# {line}" for line in _wrap(field.metadata["doc"], 96))
                default = "unset" if field.default is None else _toml_value(field.default)
                out.append(f"# Default: {default}")
            if value is None:
                example = field.metadata["example"]
                out.append(f"# {field.name} = {_toml_value(example)}" if documented else f"# {field.name} is unset")
            else:
                out.append(f"{field.name} = {_toml_value(value)}")
    return "\n".join(out) + "\n"


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


EXAMPLE_HEADER = """\
# emotion-edge configuration (TOML). Generated from edge/config/schema.py by render_example(): every key,
# its description and its default. Keys left out keep their defaults; unknown keys are refused.
# Check a file with:  emotion-edge check-config /etc/emotion-edge/config.toml
# Override a key for one run with:  emotion-edge run --config FILE --set output.prefix=lab
"""


def render_example() -> str:
    """The documented example config: the defaults plus EXAMPLE_OVERRIDES (camera, microphone, local broker)."""
    return EXAMPLE_HEADER + "\n" + render_toml(apply_overrides(Config(), EXAMPLE_OVERRIDES), documented=True)


def check_config(path: str | Path, overrides: Iterable[str] = ()) -> int:
    """``emotion-edge check-config``: print the effective configuration (0) or the error (2) to stderr."""
    try:
        config = apply_overrides(load_config(path), parse_overrides(overrides))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"# effective configuration from {path}")
    print(render_toml(config), end="")
    return 0
