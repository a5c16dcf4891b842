"""The seam between the pipeline and its outputs: the ``Sink`` interface (``factory.py`` picks one from config).

The pipeline calls ``publish(topic, body)`` with plain JSON-able bodies (see schemas/README.md);
sinks add the envelope (``Envelope.wrap``), so every sink emits identical payloads.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any

from edge.events.envelope import Topic


class Sink(ABC):
    """Where payloads go. Every method is thread-safe; ``publish`` never blocks on the network."""

    @abstractmethod
    def publish(self, topic: Topic, body: dict[str, Any]) -> None:
        """Wrap ``body`` in the envelope and send it (or hold it until it can be sent)."""

    @abstractmethod
    def available(self, online: bool) -> None:
        """Announce the device as online or offline."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """``{"buffered": int, "dropped": int, "delivered": int, "connected": bool}``."""

    @abstractmethod
    def close(self, timeout: float | None = None) -> None:
        """Deliver what is held for up to ``timeout`` s (None: the configured default), announce offline, release."""

    def reader_gone(self) -> bool:
        """True once the one reader of this sink has stopped reading (a closed pipe): nobody is listening."""
        return False

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class LocalSink(Sink):
    """A sink that shows payloads where the process runs (stdout, a terminal): nothing is buffered or lost.

    Availability is a broker notion (retained online / last-will offline); here the process's own
    lifetime says it, so ``available`` does nothing. Subclasses count each shown payload in
    ``_delivered`` under ``_lock`` and set ``_closed``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._delivered = 0
        self._closed = False

    def available(self, online: bool) -> None:
        return None

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"buffered": 0, "dropped": 0, "delivered": self._delivered, "connected": True}
