"""The fusion stage: per-track fusion of face and speech, temporal smoothing, and every publication.

Per track, the newest face posterior and the newest speech posterior are fused when they were
captured within ``tolerance_s`` of each other and the speech can be attributed to the track, by
``edge.fusion.decision.fuse``: the model-level fusion head on their embeddings when one is loaded
(``fusion`` "model"), else decision-level fusion ("decision"); otherwise the modality at hand
alone ("face_only", "speech_only"). Events and state say which. Speech is
attributed to a face only when exactly one face is tracked (``sole_face``); with several faces,
or none, it is not fused into any face (no active-speaker detection) and is reported on its own
as track 0, "the voice" (``unattributed``), which ends after ``voice_timeout_s`` without speech.
The fused posterior goes through the track's EmotionSmoother. Events: ``track_appeared`` when
the tracker confirms a face (label null until its first classification; the voice appears with
its first label), ``emotion_changed`` when the smoothed label changes, ``track_lost`` when the
tracker ends a track, and for every track still open when the stage drains at shutdown (so each
appeared track is lost once, and the last retained state holds no tracks). State is published
after each event and every ``state_interval_s``; stats every ``stats_interval_s``, and both once
more at shutdown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.capture.queues import DropOldestQueue
from edge.config.schema import Config
from edge.events.envelope import Topic
from edge.events.sink import Sink
from edge.fusion.decision import MODALITIES, EmbeddingFusion, PosteriorGate, decision_weights, fuse
from edge.fusion.smoothing import EmotionSmoother, Smoothed
from edge.pipeline.messages import Posterior, TrackChanges
from edge.pipeline.stage import Stage
from edge.pipeline.stats import PeriodPercentiles
from edge.steps import END_TO_END, PROFILE, step
from edge.taxonomy import EMOTIONS

VOICE_TRACK = 0


@dataclass
class _Track:
    """What the fusion stage knows of one track."""

    smoother: EmotionSmoother
    since_ts: float
    face: Posterior | None = None
    last: Smoothed | None = None
    last_speech_t: float = 0.0
    basis: dict[str, Any] = field(
        default_factory=lambda: {"modalities": [], "fusion": "none", "speech_attribution": "none"}
    )


def _posterior_dict(posterior: np.ndarray) -> dict[str, float]:
    return {label: round(float(p), 4) for label, p in zip(EMOTIONS, posterior, strict=True)}


class FusionStage(Stage[TrackChanges | Posterior]):
    """Track changes and posteriors in; events, state and stats out to ``sink``."""

    def __init__(
        self,
        inbox: DropOldestQueue[TrackChanges | Posterior],
        sink: Sink,
        params: Config,
        speech_active: Callable[[], bool],
        stats_body: Callable[[], dict[str, Any]],
        clock: Callable[[], float] = time.monotonic,
        head: EmbeddingFusion | None = None,
        *,
        health: Callable[[], dict[str, Any]],
        gate: PosteriorGate | None = None,
    ) -> None:
        super().__init__("fusion", inbox)
        self.sink, self.params, self.head, self.gate = sink, params, head, gate
        self.speech_active, self.stats_body, self.clock = speech_active, stats_body, clock
        self.health = health
        self.latency_ms = PeriodPercentiles()
        self.tracks: dict[int, _Track] = {}
        self.present: tuple[int, ...] = ()
        self.speech: Posterior | None = None
        now = clock()
        self._next_state, self._next_stats = now + params.output.state_interval_s, now + params.output.stats_interval_s

    # --- inputs -------------------------------------------------------------------------------
    def process(self, batch: list[TrackChanges | Posterior]) -> None:
        for item in batch:
            if isinstance(item, TrackChanges):
                self._changes(item)
            elif item.modality == "face":
                track = self.tracks.get(item.track_id) if item.track_id is not None else None
                if item.track_id is not None and track is not None:  # a crop of a lost track is ignored
                    track.face = item
                    self._fuse(item.track_id, track, item)
            else:
                self._speech(item)

    def _changes(self, changes: TrackChanges) -> None:
        self.present = changes.present
        for track_id in changes.appeared:
            self.tracks[track_id] = _Track(EmotionSmoother(self.params.smoothing), since_ts=changes.t)
            self._event("track_appeared", track_id, self.tracks[track_id], changes.t)
        for track_id in changes.lost:
            lost = self.tracks.pop(track_id, None)
            if lost is not None:
                self._event("track_lost", track_id, lost, changes.t)

    def _speech(self, speech: Posterior) -> None:
        self.speech = speech
        if len(self.present) == 1 and self.present[0] in self.tracks:
            self._fuse(self.present[0], self.tracks[self.present[0]], speech)
            return
        voice = self.tracks.get(VOICE_TRACK)
        if voice is None:
            voice = self.tracks[VOICE_TRACK] = _Track(EmotionSmoother(self.params.smoothing), since_ts=speech.t)
        self._fuse(VOICE_TRACK, voice, speech)

    # --- fusion -------------------------------------------------------------------------------
    def _fuse(self, track_id: int, track: _Track, newest: Posterior) -> None:
        tolerance = self.params.pipeline.fusion_tolerance_s
        face = track.face if track.face is not None and abs(track.face.t - newest.t) <= tolerance else None
        speech = self.speech if self.speech is not None and abs(self.speech.t - newest.t) <= tolerance else None
        sole_face = track_id != VOICE_TRACK and self.present == (track_id,)
        if track_id == VOICE_TRACK:
            attribution = "unattributed"
        elif speech is None:
            attribution = "none"
        else:
            attribution = "sole_face" if sole_face else "unattributed"
        inputs = {}
        if face is not None:
            inputs["face"] = face
        if speech is not None and (sole_face or track_id == VOICE_TRACK):
            inputs["speech"] = speech
            track.last_speech_t = speech.t
        first = track.last is None
        with step("fusion + smoothing"):
            fused, method = fuse({name: p.probabilities for name, p in inputs.items()},
                                 decision_weights(self.params.pipeline),
                                 {name: p.embedding for name, p in inputs.items()},
                                 self.head, self.params.pipeline.weight_by_confidence, self.gate)
            track.last = track.smoother.update(fused)
        capture_ts = max(p.t for p in inputs.values())
        track.basis = {
            "modalities": [name for name in MODALITIES if name in inputs],
            "fusion": method,
            "speech_attribution": attribution,
        }
        latency_s = self.clock() - capture_ts
        self.latency_ms.add(latency_s * 1000)
        PROFILE.observe(END_TO_END, latency_s)
        if track.last.changed:
            track.since_ts = capture_ts
        if first and track_id == VOICE_TRACK:
            self._event("track_appeared", track_id, track, capture_ts)
        elif track.last.changed:
            self._event("emotion_changed", track_id, track, capture_ts)

    # --- publication --------------------------------------------------------------------------
    def _publish(self, topic: Topic, body: dict[str, Any]) -> None:
        with step("publish"):   # serialisation and handing over to the sink
            self.sink.publish(topic, body)

    def _event(self, kind: str, track_id: int, track: _Track, capture_ts: float) -> None:
        if track.last is None:
            label, confidence, posterior = None, 0.0, np.full(len(EMOTIONS), 1.0 / len(EMOTIONS))
        else:
            label, confidence, posterior = track.last.name(EMOTIONS), track.last.confidence, track.last.posterior
        self._publish("events", {
            "event": kind,
            "track_id": track_id,
            "label": label,
            "confidence": round(confidence, 4),
            "posterior": _posterior_dict(posterior),
            **track.basis,
            "capture_ts": capture_ts,
            "latency_ms": round(max(0.0, (self.clock() - capture_ts) * 1000), 3),
        })
        self._publish_state()

    def _publish_state(self) -> None:
        self._publish("state", {
            "tracks": [
                {
                    "track_id": track_id,
                    "label": None if track.last is None else track.last.name(EMOTIONS),
                    "confidence": 0.0 if track.last is None else round(track.last.confidence, 4),
                    "fusion": track.basis["fusion"],
                    "since_ts": track.since_ts,
                }
                for track_id, track in sorted(self.tracks.items())
            ],
            "speech_active": bool(self.speech_active()),
            "health": self.health(),
        })
        self._next_state = self.clock() + self.params.output.state_interval_s

    def _publish_stats(self) -> None:
        self._publish("stats", self.stats_body())
        self._next_stats = self.clock() + self.params.output.stats_interval_s

    def tick(self) -> None:
        now = self.clock()
        voice = self.tracks.get(VOICE_TRACK)
        if voice is not None and now - voice.last_speech_t > self.params.pipeline.voice_timeout_s:
            del self.tracks[VOICE_TRACK]
            self._event("track_lost", VOICE_TRACK, voice, voice.last_speech_t)
        if now >= self._next_state:
            self._publish_state()
        if now >= self._next_stats:
            self._publish_stats()

    def finish(self) -> None:
        now = self.clock()
        open_tracks = list(self.tracks)
        for track_id in open_tracks:
            self._event("track_lost", track_id, self.tracks.pop(track_id), now)
        if not open_tracks:   # else the last track_lost event has just published the final state
            self._publish_state()
        self._publish_stats()
