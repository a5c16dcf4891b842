"""Payload bodies in the shape the pipeline publishes (events, state, stats), and schema validation helpers."""

from __future__ import annotations

import functools
import json
from typing import Any

from jsonschema import Draft202012Validator

from edge.events.envelope import json_schema
from edge.taxonomy import EMOTIONS


def posterior(label: str, confidence: float) -> dict[str, float]:
    rest = (1.0 - confidence) / (len(EMOTIONS) - 1)
    return {name: confidence if name == label else rest for name in EMOTIONS}


def event_body(track_id: int = 1, label: str = "happy", event: str = "emotion_changed") -> dict[str, Any]:
    return {
        "event": event,
        "track_id": track_id,
        "label": label,
        "confidence": 0.8,
        "posterior": posterior(label, 0.8),
        "modalities": ["face", "speech"],
        "fusion": "decision",
        "speech_attribution": "sole_face",
        "capture_ts": 1234.5,
        "latency_ms": 42.0,
    }


def health_body() -> dict[str, Any]:
    return {"ok": True, "stalled_sources": [], "output": "connected"}


def state_body() -> dict[str, Any]:
    return {"tracks": [{"track_id": 1, "label": "happy", "confidence": 0.8, "fusion": "decision", "since_ts": 1230.0}],
            "speech_active": True, "health": health_body()}


def stats_body() -> dict[str, Any]:
    percentiles = {"p50": 12.0, "p99": 30.5}
    return {
        "uptime_s": 60.0,
        "fps": 29.7,
        "frames_captured": 1800,
        "frames_dropped": 3,
        "faces_dropped": 0,
        "audio_blocks": 1875,
        "audio_dropped": 0,
        "queue_depths": {"frames": 1, "audio": 0, "faces": 0},
        "latency_ms": {"p50": 40.0, "p99": None},
        "events_buffered": 0,
        "events_dropped": 0,
        "inference_ms": {"face": percentiles, "speech": percentiles},
        "health": health_body(),
    }


BODIES = {"events": event_body, "state": state_body, "stats": stats_body}


def validate(name: str, payload: bytes | str | dict[str, Any]) -> Any:
    """Validate one payload (raw bytes/text as published, or parsed) against its schema; return it parsed."""
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8")
    value = payload if name == "available" or isinstance(payload, dict) else json.loads(payload)
    _validator(name).validate(value)
    return value


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(json_schema(name))
