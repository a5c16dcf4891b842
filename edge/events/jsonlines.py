"""JSON lines sink: one payload per line on stdout (or any text stream), the default when no broker is set.

A reader that closes the pipe (``emotion-edge run | head -1``) is a normal way to stop reading: the
sink then drops what follows, points stdout at /dev/null (so that the interpreter's last flush
stays quiet) and says so through ``reader_gone``, and the daemon stops with exit status 0.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, TextIO

from edge.events.envelope import Envelope, encode
from edge.events.sink import LocalSink, Topic

log = logging.getLogger(__name__)


class JsonLinesSink(LocalSink):
    """Writes each enveloped payload as one JSON line and flushes it; the ``schema`` field names the topic."""

    def __init__(self, envelope: Envelope, stream: TextIO | None = None) -> None:
        super().__init__()
        self.envelope = envelope
        self._stream = sys.stdout if stream is None else stream
        self._reader_gone = False

    def publish(self, topic: Topic, body: dict[str, Any]) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("publish on a closed sink")
            if self._reader_gone:
                return
            line = encode(self.envelope.wrap(topic, body))
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except BrokenPipeError:
                self._stop_writing()
                return
            self._delivered += 1

    def _stop_writing(self) -> None:
        self._reader_gone = True
        log.info("the reader of the JSON lines closed its end: stopping")
        if self._stream is sys.stdout:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)

    def reader_gone(self) -> bool:
        with self._lock:
            return self._reader_gone

    def close(self, timeout: float | None = None) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                if not self._reader_gone:
                    try:
                        self._stream.flush()
                    except BrokenPipeError:
                        self._stop_writing()
