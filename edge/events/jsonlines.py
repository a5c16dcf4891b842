"""JSON lines sink: one payload per line on stdout (or any text stream), the default when no broker is set."""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

from edge.events.envelope import Envelope, encode
from edge.events.sink import Sink, Topic


class JsonLinesSink(Sink):
    """Writes each enveloped payload as one JSON line and flushes it; the ``schema`` field names the topic.

    Availability is a broker notion (retained online / last-will offline); on a stream the
    process's own lifetime says it, so ``available`` writes nothing.
    """

    def __init__(self, envelope: Envelope, stream: TextIO | None = None) -> None:
        self.envelope = envelope
        self._stream = sys.stdout if stream is None else stream
        self._lock = threading.Lock()
        self._delivered = 0
        self._closed = False

    def publish(self, topic: Topic, body: dict[str, Any]) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("publish on a closed sink")
            line = encode(self.envelope.wrap(topic, body))
            self._stream.write(line + "\n")
            self._stream.flush()
            self._delivered += 1

    def available(self, online: bool) -> None:
        return None

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"buffered": 0, "dropped": 0, "delivered": self._delivered, "connected": True}

    def close(self, timeout: float | None = None) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._stream.flush()
