"""The daemon's configuration: one frozen dataclass per area, loaded from TOML and checked strictly.

Every field carries a description and a default (``setting(...)``), so the documented example
(``systemd/config.example.toml``) is generated from this module by ``render_example()`` and
cannot drift from it. A TOML file may set any subset of the keys; unknown sections or keys,
values of the wrong type and values out of range are refused with a message that names the file,
the line and the key. ``--set section.key=value`` overrides are parsed with TOML value syntax
(a bare word that is not valid TOML is taken as a string; an empty value unsets an optional key).
Relative paths in a file are taken relative to the file's directory.

``python -m edge.config > systemd/config.example.toml`` regenerates the example.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from edge.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 on older JetPacks
    import tomli as tomllib

MQTT_URL = (r"mqtts?://[^\s/:@]+(:\d{1,5})?/?", "mqtt://host[:port] or mqtts://host[:port]")
TOPIC_LEVEL = (r"[^\s/+#]+", "one MQTT topic level: no spaces, '/', '+' or '#'")


class ConfigError(InputError):
    """A configuration file or override that cannot be used (syntax, unknown key, wrong type or range)."""


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
    exists: bool = False,
) -> Any:
    """A dataclass field with its documentation and checks.

    ``example`` is shown (commented out) in the example file for keys whose default is unset;
    ``minimum``/``maximum`` bound numbers; ``pattern`` is (regex matching the whole string, what it
    describes); ``exists``
    asks the loader to check that a path exists.
    """
    metadata = {"doc": doc, "example": example, "minimum": minimum, "maximum": maximum, "pattern": pattern}
    return dataclasses.field(default=default, metadata={**metadata, "exists": exists})


@dataclass(frozen=True)
class SourceConfig:
    """Where frames and audio come from."""

    video: str | None = setting(
        None,
        "Camera or file URI: v4l2:///dev/video0 (V4L2 through OpenCV), csi://0 (Jetson CSI camera via an "
        "nvarguscamerasrc GStreamer pipeline), gst://<pipeline ending in appsink>, file://clip.mp4 or the path of "
        "an existing file (replays the file's video and audio together). Unset: no camera.",
        example="v4l2:///dev/video0",
    )
    audio: str | None = setting(
        None,
        'Microphone: a sounddevice input device name (or part of it), its index, or "default". Unset: no '
        "microphone (a file:// video source brings its own audio track).",
        example="default",
    )
    realtime: bool = setting(True, "file:// sources: replay at the file's own pace (false: as fast as possible).")
    loop: bool = setting(False, "file:// sources: start again at the end instead of stopping.")


@dataclass(frozen=True)
class PipelineConfig:
    """How frames and audio are processed."""

    detect_every: int = setting(
        3, "Run face detection on every Nth frame; the tracker follows faces in between.", minimum=1
    )
    key_face_radius: int = setting(
        2, "Key faces: per track, a sliding window of 2r+1 aligned crops keeps the most typical one, shifted by r.",
        minimum=0,
    )
    max_faces: int = setting(
        4, "Most faces tracked (and classified) at once: faces already tracked keep their tracks, new ones start "
        "while there is room, largest first; the others are counted in stats.faces_dropped.", minimum=1,
    )
    track_min_hits: int = setting(
        2, "Detection rounds in a row that must find a face before it becomes a track (track_appeared).", minimum=1
    )
    track_max_age: int = setting(
        3, "Detection rounds a track may go unseen (turned away, occluded) before it is lost (track_lost).", minimum=0
    )
    track_iou: float = setting(
        0.3, "Least overlap (intersection over union) of a detection with a track's box to continue that track.",
        minimum=0.01, maximum=1.0,
    )
    fusion_tolerance_s: float = setting(
        1.0, "Face and speech results captured at most this many seconds apart are fused for a track.", minimum=0.0
    )
    face_weight: float = setting(
        1.0, "Weight of the face log-posterior in decision-level fusion (used whenever no fusion head fuses the "
        "track: models.fusion unset, or a modality missing).", minimum=0.0,
    )
    speech_weight: float = setting(
        1.0, "Weight of the speech log-posterior in decision-level fusion (see face_weight).", minimum=0.0
    )
    voice_timeout_s: float = setting(
        3.0, "Track 0, the voice (speech not attributed to a single face), is lost after this long without speech.",
        minimum=0.1,
    )
    frame_queue: int = setting(
        2, "Frames waiting for face detection; when full the oldest is dropped and counted (stats).", minimum=1
    )
    audio_queue: int = setting(
        250, "20 ms audio blocks waiting for the speech stage; when full the oldest is dropped and counted.", minimum=1
    )


@dataclass(frozen=True)
class ModelsConfig:
    """Which models run and on which inference backend."""

    speech: Path | None = setting(
        None, "Speech model (ONNX with its JSON sidecar). Unset: the shipped edge/models/speech_cnn.onnx.",
        example="/etc/emotion-edge/models/speech_cnn.onnx", exists=True,
    )
    face: Path | None = setting(
        None, "Face model (ONNX with its JSON sidecar). Unset: the shipped edge/models/face_stn_cnn.onnx.",
        example="/etc/emotion-edge/models/face_stn_cnn.onnx", exists=True,
    )
    fusion: Path | None = setting(
        None, "Model-level fusion head (fusion_head.onnx of `emotion-export onnx --fusion`, with its JSON sidecar): "
        "speech and face embeddings in, 7 emotions out. When set, a track with a face and speech captured within "
        "pipeline.fusion_tolerance_s is fused by this head (events and state say fusion = \"model\"); when one "
        "modality is missing, decision-level fusion as when unset. The head must have been exported for the speech "
        "and face models in use (its sidecar records their checksums and embedding sizes): the daemon refuses to "
        "start otherwise, saying which differs. Runs on the backend below. Unset: a shipped "
        "edge/models/fusion_head.onnx when there is one and speech and face are unset too (it would be made for the "
        "shipped models; this release ships none: decision-level fusion); decision-level fusion with other models.",
        example="/etc/emotion-edge/models/fusion_head.onnx", exists=True,
    )
    model_fusion: bool = setting(
        True, "Fuse a track's face and speech with the fusion head (models.fusion, or a shipped one) when both are "
        "present; false: decision-level fusion only (pipeline.face_weight and pipeline.speech_weight)."
    )
    backend: Literal["auto", "onnxruntime", "tensorrt"] = setting(
        "auto", "Inference backend; auto picks TensorRT when an engine and a GPU are there, else ONNX Runtime."
    )
    providers: tuple[str, ...] = setting(
        ("CPUExecutionProvider",), "ONNX Runtime execution providers, in order of preference."
    )
    threads: int = setting(0, "ONNX Runtime intra-op threads per model (0: ONNX Runtime decides).", minimum=0)


@dataclass(frozen=True)
class SmoothingConfig:
    """How per-track posteriors are smoothed over time before events are raised."""

    ema_alpha: float = setting(
        0.3, "Weight of the newest posterior in the exponential moving average (1: no smoothing).",
        minimum=0.01, maximum=1.0,
    )
    hysteresis: float = setting(
        0.1, "A new label must beat the current one's smoothed probability by this margin to be reported.",
        minimum=0.0, maximum=1.0,
    )
    hold: int = setting(
        2, "Consecutive updates on which a new label must lead by the hysteresis margin before it is reported.",
        minimum=1,
    )


@dataclass(frozen=True)
class OutputConfig:
    """Where events, state and stats go (MQTT, or JSON lines on stdout when no broker is set)."""

    mqtt_url: str | None = setting(
        None, "MQTT broker, mqtt://host[:port] (default port 1883) or mqtts://host[:port] (TLS, default 8883). "
        "Unset: every payload is printed as one JSON line on stdout.",
        example="mqtt://127.0.0.1:1883", pattern=MQTT_URL,
    )
    prefix: str = setting("emotion", "First level of every topic: <prefix>/<device>/events ...", pattern=TOPIC_LEVEL)
    device: str | None = setting(
        None, "Device id, the second topic level and the payloads' device field. Unset: the hostname.",
        example="kiosk-1", pattern=TOPIC_LEVEL,
    )
    username: str | None = setting(None, "MQTT user name.", example="emotion-edge")
    password: str | None = setting(None, "MQTT password (needs username).", example="secret")
    tls_ca: Path | None = setting(
        None, "mqtts://: CA certificate file that signed the broker's certificate. Unset: the system's CAs.",
        example="/etc/emotion-edge/ca.crt", exists=True,
    )
    tls_cert: Path | None = setting(
        None, "mqtts://: client certificate file (with tls_key) for brokers that require one.",
        example="/etc/emotion-edge/client.crt", exists=True,
    )
    tls_key: Path | None = setting(
        None, "mqtts://: private key of tls_cert.", example="/etc/emotion-edge/client.key", exists=True
    )
    tls_insecure: bool = setting(
        False, "mqtts://: do not check that the broker's certificate names its host (testing only)."
    )
    keepalive_s: int = setting(
        30, "MQTT keepalive in seconds; the broker declares the device offline after 1.5x this.", minimum=5
    )
    reconnect_min_s: float = setting(1.0, "First delay before reconnecting to a lost broker.", minimum=0.1)
    reconnect_max_s: float = setting(
        5.0, "Longest delay between reconnection attempts (doubling from the first): a broker that comes back is "
        "reached within about this long.", minimum=0.1
    )
    buffer_size: int = setting(
        1000, "Payloads held while the broker is unreachable, delivered in order when it returns; beyond this "
        "the oldest are dropped and counted in stats.", minimum=1,
    )
    close_timeout_s: float = setting(
        5.0, "On shutdown: how long to wait for held payloads to be delivered.", minimum=0.0
    )
    homeassistant: bool = setting(
        False, "MQTT: announce the device to Home Assistant (MQTT discovery, retained, under homeassistant_prefix) "
        "with an emotion sensor fed from every state message; false removes a sensor announced before."
    )
    homeassistant_prefix: str = setting(
        "homeassistant", "MQTT: Home Assistant's discovery prefix (its MQTT integration's setting).",
        pattern=TOPIC_LEVEL,
    )
    state_interval_s: float = setting(5.0, "Period of the retained state message.", minimum=0.1)
    stats_interval_s: float = setting(10.0, "Period of the health statistics message.", minimum=0.1)

    def __post_init__(self) -> None:
        port = re.fullmatch(r"mqtts?://[^\s/:@]+:(\d+)/?", self.mqtt_url or "")
        if port and not 1 <= int(port.group(1)) <= 65535:
            raise SettingError("mqtt_url", f"port {port.group(1)} is not in 1..65535")
        tls_set = [name for name in ("tls_ca", "tls_cert", "tls_key") if getattr(self, name) is not None]
        if tls_set and not (self.mqtt_url or "").startswith("mqtts://"):
            raise SettingError(tls_set[0], "is set but mqtt_url is not an mqtts:// URL")
        if self.tls_insecure and not (self.mqtt_url or "").startswith("mqtts://"):
            raise SettingError("tls_insecure", "is set but mqtt_url is not an mqtts:// URL")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise SettingError("tls_cert" if self.tls_cert is None else "tls_key", "tls_cert and tls_key go together")
        if self.password is not None and self.username is None:
            raise SettingError("password", "is set without username")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise SettingError("reconnect_max_s", "must be at least reconnect_min_s")


@dataclass(frozen=True)
class ServiceConfig:
    """How the daemon behaves as a service."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = setting("INFO", "Lowest level logged to stderr.")
    watchdog: bool = setting(
        True, "Under systemd with WatchdogSec set: ping the watchdog (WATCHDOG=1) while the pipeline is healthy "
        "and no source is stalled."
    )
    stall_s: float = setting(
        15.0, "A running source that delivers nothing (no frame, no audio block) for this long is stalled: it is "
        "logged and reported in the service status, and the watchdog pings stop until it delivers again (under "
        "systemd, WatchdogSec later the service is restarted). 0: no stall detection.", minimum=0.0,
    )


@dataclass(frozen=True)
class Config:
    """The whole configuration: one table per area."""

    source: SourceConfig = dataclasses.field(default_factory=SourceConfig)
    pipeline: PipelineConfig = dataclasses.field(default_factory=PipelineConfig)
    models: ModelsConfig = dataclasses.field(default_factory=ModelsConfig)
    smoothing: SmoothingConfig = dataclasses.field(default_factory=SmoothingConfig)
    output: OutputConfig = dataclasses.field(default_factory=OutputConfig)
    service: ServiceConfig = dataclasses.field(default_factory=ServiceConfig)


# What the installed service runs with, beyond the defaults: the camera, the default microphone and
# the local broker. systemd/config.example.toml is rendered from Config() with these applied.
EXAMPLE_OVERRIDES: Mapping[str, object] = {
    "source.video": "v4l2:///dev/video0",
    "source.audio": "default",
    "output.mqtt_url": "mqtt://127.0.0.1:1883",
}

_SECTIONS: dict[str, type] = {f.name: f.default_factory for f in dataclasses.fields(Config)}  # type: ignore[misc]
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
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(map(repr, choices))}, got {_describe(value)}")
        return value
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
    _check_limits(value, field)
    return value


def _check_limits(value: object, field: dataclasses.Field[Any]) -> None:
    meta = field.metadata
    if isinstance(value, int | float) and not isinstance(value, bool):
        if meta["minimum"] is not None and value < meta["minimum"]:
            raise ValueError(f"must be at least {meta['minimum']}, got {value!r}")
        if meta["maximum"] is not None and value > meta["maximum"]:
            raise ValueError(f"must be at most {meta['maximum']}, got {value!r}")
    if isinstance(value, str) and meta["pattern"] is not None and not re.fullmatch(meta["pattern"][0], value):
        raise ValueError(f"must be {meta['pattern'][1]}, got {value!r}")
    if isinstance(value, Path) and meta["exists"] and not value.exists():
        raise ValueError(f"{value} does not exist")


def _build_section(section: str, values: Mapping[str, object], base: Path | None, where: _Locator) -> Any:
    cls = _SECTIONS[section]
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
        if section not in _SECTIONS:
            raise where.error(section, None, _unknown("section", section, _SECTIONS))
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
    if target in (str, Path) or typing.get_origin(target) is Literal:
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
        if section not in _SECTIONS:
            raise where.error(section, None, _unknown("section", section, _SECTIONS))
        hints = typing.get_type_hints(_SECTIONS[section])
        if key not in hints:
            raise where.error(section, key, _unknown("key", key, hints))
        changed.setdefault(section, {})[key] = _override_value(raw, hints[key])
    sections: dict[str, object] = {}
    for section, values in changed.items():
        current = dataclasses.asdict(getattr(config, section))
        sections[section] = _build_section(section, {**current, **values}, None, where)
    return dataclasses.replace(config, **sections)  # type: ignore[arg-type]


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
# emotion-edge configuration (TOML). Generated from edge/config.py by render_example(): every key,
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


if __name__ == "__main__":
    print(render_example(), end="")
