"""Property-based tests (hypothesis) of the inputs a deployment feeds in: RAVDESS file names, config files, payload
bodies, and a bounded fuzz of the media decoders with random and truncated bytes: a result or a documented error."""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
import typing
from pathlib import Path

import pytest
from conftest import FIXTURES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from payloads import event_body, validate

from edge.capture.file_replay import FileReplaySource
from edge.config.loader import ConfigError, load_config
from edge.config.schema import SECTIONS, Config
from edge.demo import DEMO_CLIP
from edge.errors import InputError, MediaDecodeError
from edge.events.envelope import Envelope, encode
from edge.features.audio import load_audio
from edge.features.video import iter_video_frames, open_clip
from train.data.ravdess import parse_take_name

FIELD_RANGES = ((1, 3), (1, 2), (1, 8), (1, 2), (1, 2), (1, 2), (1, 24))


@given(fields=st.tuples(*(st.integers(low, high) for low, high in FIELD_RANGES)),
       suffix=st.sampled_from([".wav", ".flac", ".mp4"]))
def test_every_valid_ravdess_name_parses_to_its_fields(fields: tuple[int, ...], suffix: str) -> None:
    name = "-".join(f"{value:02d}" for value in fields) + suffix
    if fields[2] == 1 and fields[3] == 2:   # neutral has no strong intensity
        with pytest.raises(InputError, match="neutral"):
            parse_take_name(name)
        return
    take = parse_take_name(name)
    assert (take.modality, take.emotion, take.intensity, take.actor) == (fields[0], fields[2], fields[3], fields[6])


@given(stem=st.text(alphabet="0123456789-abX_", max_size=30), suffix=st.sampled_from([".wav", ".mp4", ".txt", ""]))
def test_any_other_name_is_refused_with_an_input_error(stem: str, suffix: str) -> None:
    try:
        parse_take_name(stem + suffix)
    except InputError:
        return
    parts = stem.split("-")   # it parsed: then it was a well-formed name
    assert suffix in (".wav", ".mp4") and len(parts) == 7 and all(len(p) == 2 and p.isdigit() for p in parts)


KEYS = [(section, field.name) for section, cls in SECTIONS.items() for field in dataclasses.fields(cls)]
TOML_VALUES = st.one_of(st.booleans(), st.integers(-10**6, 10**6), st.floats(-1e6, 1e6, allow_nan=False),
                        st.text(alphabet="abc/:._-019 ", max_size=12), st.lists(st.integers(-5, 5), max_size=3))


def _toml(value: object) -> str:
    return json.dumps(value) if not isinstance(value, bool) else ("true" if value else "false")


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(KEYS), value=TOML_VALUES)
def test_any_value_for_any_key_loads_or_is_a_config_error_naming_it(key: tuple[str, str], value: object) -> None:
    section, name = key
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "config.toml"
        path.write_text(f"[{section}]\n{name} = {_toml(value)}\n")
        try:
            config = load_config(path)
        except ConfigError as exc:
            # the key itself, or (a check across keys, e.g. reconnect_min_s > reconnect_max_s) the other key naming it
            assert section in str(exc) and name in str(exc) and str(path) in str(exc)
            return
    assert isinstance(config, Config)
    hint = typing.get_type_hints(SECTIONS[section])[name]
    assert getattr(getattr(config, section), name) is not None or type(None) in typing.get_args(hint)


@given(key=st.text(alphabet="abcdefghij_", min_size=1, max_size=12), section=st.sampled_from(sorted(SECTIONS)))
def test_unknown_keys_are_refused(key: str, section: str) -> None:
    if (section, key) in KEYS:
        return
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "config.toml"
        path.write_text(f"[{section}]\n{key} = 1\n")
        with pytest.raises(ConfigError, match="unknown key"):
            load_config(path)


@given(confidence=st.floats(allow_nan=True, allow_infinity=True), latency=st.floats(0, 1e6),
       track=st.integers(1, 10**6))   # track 0, the voice, is speech_only: event_body says decision
def test_event_payloads_validate_or_are_refused_before_they_leave(confidence: float, latency: float,
                                                                   track: int) -> None:
    body = {**event_body(track_id=track), "confidence": confidence, "latency_ms": latency}
    payload = Envelope("device-1").wrap("events", body)
    if not math.isfinite(confidence):
        with pytest.raises(ValueError):
            encode(payload)
        return
    text = encode(payload)
    if 0 <= confidence <= 1:
        validate("events", text.encode())


def _decoders(path: Path) -> None:
    """Every entry point that reads a user's media file, to the end."""
    load_audio(path)
    open_clip(path)
    for _ in iter_video_frames(path, 7):
        pass
    for _ in FileReplaySource(path, realtime=False).items():
        pass


@pytest.mark.parametrize("original", [DEMO_CLIP, FIXTURES / "03-01-05-02-01-01-01.flac"], ids=["mp4", "flac"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_truncated_and_random_bytes_give_a_result_or_a_clear_error(original: Path, data: st.DataObject) -> None:
    raw = original.read_bytes()
    mode = data.draw(st.sampled_from(["cut", "flip", "random"]))
    if mode == "cut":
        blob = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif mode == "flip":
        start = data.draw(st.integers(0, len(raw) - 64))
        blob = raw[:start] + data.draw(st.binary(min_size=64, max_size=64)) + raw[start + 64:]
    else:
        blob = data.draw(st.binary(max_size=4096))
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"fuzz{original.suffix}"
        path.write_bytes(blob)
        try:
            _decoders(path)
        except InputError as exc:   # MediaDecodeError, EmptyMediaError, NoAudio/NoVideoStreamError
            assert str(path) in str(exc)


def test_a_header_with_bytes_that_are_not_utf8_is_a_media_error(tmp_path: Path) -> None:
    """Found by the fuzz above: PyAV raised UnicodeDecodeError on a corrupted MP4 header's metadata."""
    raw = DEMO_CLIP.read_bytes()
    path = tmp_path / "header.mp4"
    path.write_bytes(raw[:292] + b"\x00" * 24 + b"\x01" * 14 + b"\x80" + b"\x00" * 25 + raw[356:])
    with pytest.raises(MediaDecodeError, match="not a readable media file"):
        load_audio(path)
