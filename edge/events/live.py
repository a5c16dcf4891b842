"""Live terminal view: what a person running ``emotion-edge run`` in a terminal sees instead of JSON lines.

One line per track (its emotion, the confidence of the smoothed posterior, the modalities and the
fusion behind it; a lost track stays on screen, dimmed, for ``LOST_SHOWN_S``) and a health line
from the stats payloads (frame rate, capture-to-publish latency, drops, buffered events), redrawn
in place with ``rich`` (the ``live`` extra). It is a ``Sink`` like the others: the pipeline
publishes the same payloads, this sink only draws them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from edge.errors import InputError
from edge.events.sink import LocalSink, Topic

LOST_SHOWN_S = 10.0
LIVE_HINT = "the live view needs rich: pip install 'emotion-edge[live]' (in a checkout: script/setup live)"


def rich_available() -> bool:
    """Whether the ``live`` extra (rich) is installed."""
    try:
        import rich  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


class LiveViewSink(LocalSink):
    """Draws tracks and health in place on a terminal (see the module docstring)."""

    def __init__(self, console: Any = None, refresh_per_second: float = 4.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        try:
            from rich.console import Console
            from rich.live import Live
        except ModuleNotFoundError:
            raise InputError(LIVE_HINT) from None
        super().__init__()
        self.console = console or Console()
        self.clock = clock
        self._tracks: dict[int, dict[str, Any]] = {}
        self._health: dict[str, Any] | None = None
        self._speech_active = False
        self._live = Live(self._render(), console=self.console, refresh_per_second=refresh_per_second,
                          auto_refresh=False)
        self._live.start()

    def publish(self, topic: Topic, body: dict[str, Any]) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("publish on a closed sink")
            if topic == "events":
                self._event(body)
            elif topic == "state":
                self._state(body)
            elif topic == "stats":
                self._health = body
            self._delivered += 1
            self._live.update(self._render(), refresh=True)

    def _event(self, body: dict[str, Any]) -> None:
        track = {"label": body["label"], "confidence": body["confidence"], "modalities": body["modalities"],
                 "fusion": body["fusion"], "lost_at": None}
        if body["event"] == "track_lost":
            track["lost_at"] = self.clock()
        self._tracks[body["track_id"]] = track

    def _state(self, body: dict[str, Any]) -> None:
        self._speech_active = bool(body["speech_active"])
        present = {track["track_id"]: track for track in body["tracks"]}
        now = self.clock()
        for track_id, entry in list(self._tracks.items()):
            lost_at = entry["lost_at"]
            if (lost_at is None and track_id not in present) or (lost_at is not None and now - lost_at > LOST_SHOWN_S):
                del self._tracks[track_id]
        for track_id, track in present.items():
            entry = self._tracks.setdefault(track_id, {"modalities": [], "fusion": track["fusion"]})
            entry.update(label=track["label"], confidence=track["confidence"], fusion=track["fusion"], lost_at=None)

    def _render(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(title="emotion-edge", title_justify="left", expand=False)
        for column in ("track", "emotion", "confidence", "modalities", "fusion", "status"):
            table.add_column(column)
        for track_id, track in sorted(self._tracks.items()):
            name = "voice" if track_id == 0 else str(track_id)
            label = track["label"] or "(no posterior yet)"
            lost = track["lost_at"] is not None
            table.add_row(name, label, f"{track['confidence']:.2f}", "+".join(track["modalities"]) or "-",
                          track["fusion"] or "-", "lost" if lost else "tracked", style="dim" if lost else None)
        if not self._tracks:
            table.add_row("-", "no face or voice", "", "", "", "")
        return Group(table, Text(self._health_line(), style="dim"))

    def _health_line(self) -> str:
        speech = "speech: active" if self._speech_active else "speech: silent"
        health = self._health
        if health is None:
            return f"{speech} | health: waiting for the first stats payload"
        latency = health["latency_ms"]
        p50 = "-" if latency["p50"] is None else f"{latency['p50']:.0f}"
        p99 = "-" if latency["p99"] is None else f"{latency['p99']:.0f}"
        return (f"{speech} | {health['fps']:.1f} fps | capture->publish p50 {p50} ms, p99 {p99} ms | frames "
                f"dropped {health['frames_dropped']} of {health['frames_captured']} | audio dropped "
                f"{health['audio_dropped']} | events buffered {health['events_buffered']}, dropped "
                f"{health['events_dropped']} | up {health['uptime_s']:.0f} s")

    def close(self, timeout: float | None = None) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._live.update(self._render(), refresh=True)
                self._live.stop()
