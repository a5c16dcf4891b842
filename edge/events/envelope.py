"""The envelope every published payload carries: schema id, timestamp, device id and a per-topic sequence number."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any, Literal, get_args

Topic = Literal["events", "state", "stats"]
TOPICS: tuple[str, ...] = get_args(Topic)
SCHEMA_VERSIONS = {"events": 2, "state": 4, "stats": 2}
"""Payload version per topic; a new or changed key means a new version (state 2 added ``tracks[].fusion``,
state 3 ``health``; events 2 and state 4 the label ``uncertain``; stats 2 ``faces_dropped`` and ``health``)."""
SCHEMA_NAMES = (*TOPICS, "available")
ENVELOPE_KEYS = ("schema", "ts", "device", "seq")


def schema_id(topic: str) -> str:
    """``"events"`` -> ``"emotion-edge/events/2"``: the payload's ``schema`` field."""
    return f"emotion-edge/{topic}/{SCHEMA_VERSIONS[topic]}"


class Envelope:
    """Wraps payload bodies; sequence numbers start at 1 per topic per run and have no gaps.

    Thread-safe. Callers that must keep payloads in sequence order (the sinks) call ``wrap`` under
    the same lock that orders their output.
    """

    def __init__(self, device: str, clock: Callable[[], float] = time.time) -> None:
        self.device = device
        self._clock = clock
        self._seq = dict.fromkeys(TOPICS, 0)
        self._lock = threading.Lock()

    def wrap(self, topic: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``{"schema", "ts" (epoch seconds), "device", "seq"}`` followed by the body's own keys."""
        if topic not in self._seq:
            raise ValueError(f"unknown topic {topic!r}: expected one of {', '.join(TOPICS)}")
        clash = [key for key in ENVELOPE_KEYS if key in body]
        if clash:
            raise ValueError(f"{topic} body must not contain the envelope keys {clash}")
        with self._lock:
            self._seq[topic] += 1
            seq = self._seq[topic]
        return {"schema": schema_id(topic), "ts": self._clock(), "device": self.device, "seq": seq, **body}


def encode(payload: Mapping[str, Any]) -> str:
    """The payload as compact JSON text (NaN and infinities refused: JSON cannot carry them)."""
    return json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one topic's payload: events, state, stats or available."""
    if name not in SCHEMA_NAMES:
        raise ValueError(f"no schema {name!r}: expected one of {', '.join(SCHEMA_NAMES)}")
    text = (resources.files("edge.events") / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
