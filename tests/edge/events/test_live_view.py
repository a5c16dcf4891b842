"""The live terminal view: tracks and health drawn from the payloads, and `emotion-edge run` on a real terminal."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys

import pytest
from conftest import REPO_ROOT
from payloads import BODIES, event_body

from edge.config.loader import apply_overrides
from edge.config.schema import Config
from edge.errors import InputError

pytest.importorskip("rich", reason="the live view needs the live extra (rich)")
from rich.console import Console  # noqa: E402

from edge.app.cli import live_view_wanted  # noqa: E402
from edge.events.live import LOST_SHOWN_S, LiveViewSink  # noqa: E402


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _screen(console: Console) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", console.file.getvalue())  # type: ignore[attr-defined]


def test_tracks_and_health_are_drawn_and_lost_tracks_fade() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=160)
    clock = _Clock()
    sink = LiveViewSink(console, clock=clock)
    sink.publish("events", {**event_body(track_id=3), "label": "sad", "confidence": 0.71,
                            "modalities": ["face", "speech"], "fusion": "model"})
    sink.publish("stats", BODIES["stats"]())
    screen = _screen(console)
    assert re.search(r"3\s*│\s*sad\s*│\s*0\.71\s*│\s*face\+speech\s*│\s*model\s*│\s*tracked", screen), screen
    assert "fps" in screen and "capture->publish" in screen and "frames dropped" in screen
    sink.publish("events", {**event_body(track_id=3), "event": "track_lost", "label": "sad"})
    sink.publish("state", {"tracks": [], "speech_active": False})
    assert re.search(r"3\s*│\s*sad.*│\s*lost", _screen(console)[-1000:])
    clock.now += LOST_SHOWN_S + 1
    sink.publish("state", {"tracks": [], "speech_active": True})
    sink.close()
    last = _screen(console)[-600:]
    assert "no face or voice" in last and "speech: active" in last
    assert sink.stats()["delivered"] == 5
    with pytest.raises(RuntimeError, match="closed"):
        sink.publish("stats", BODIES["stats"]())


def test_the_live_view_is_chosen_only_without_a_broker() -> None:
    with_broker = apply_overrides(Config(), {"output.mqtt_url": "mqtt://127.0.0.1:1883"})
    assert not live_view_wanted("auto", with_broker) and not live_view_wanted("jsonl", Config())
    assert live_view_wanted("live", Config())
    with pytest.raises(InputError, match="mqtt_url"):
        live_view_wanted("live", with_broker)


def test_run_on_a_terminal_shows_the_live_view_and_no_json() -> None:
    leader, follower = pty.openpty()
    daemon = subprocess.Popen([sys.executable, "-m", "edge.app.cli", "run", "--no-realtime"], stdout=follower,
                              stderr=subprocess.PIPE, cwd=REPO_ROOT)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:   # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert daemon.wait(timeout=60) == 0
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode(errors="replace"))
    assert "emotion-edge" in screen and "happy" in screen and "fps" in screen
    assert '"schema"' not in screen
