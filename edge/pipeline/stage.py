"""The thread every pipeline stage runs on: take what is waiting in the input queue, process it as a batch.

A stage ends when its input queue is closed and empty: it calls ``finish`` (flush what it holds)
and closes the queues it alone feeds, so that closing the capture queues drains the whole
pipeline in order. An exception in a stage is logged and ends the pipeline (``error`` is set and
the stage's outputs are closed) rather than leaving it silently stuck.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from edge.capture.queues import DropOldestQueue

log = logging.getLogger(__name__)

T = TypeVar("T")


class Stage(ABC, Generic[T]):
    """Consumes batches from ``inbox`` on its own thread; ``tick`` runs at least every ``tick_s`` seconds."""

    def __init__(
        self, name: str, inbox: DropOldestQueue[T], outputs: Sequence[DropOldestQueue[Any]] = (), tick_s: float = 0.1
    ) -> None:
        self.name = name
        self.inbox = inbox
        self.outputs = list(outputs)
        self.tick_s = tick_s
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"stage-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the stage to end; True when it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            while not self.inbox.finished:
                batch = self.inbox.get_batch(timeout=self.tick_s)
                if batch:
                    self.process(batch)
                self.tick()
            self.finish()
        except Exception as exc:  # a broken stage must end the run visibly, not hang it
            log.exception("pipeline stage %s failed", self.name)
            self.error = exc
        finally:
            for queue in self.outputs:
                queue.close()

    @abstractmethod
    def process(self, batch: list[T]) -> None:
        """Handle everything that was waiting, oldest first."""

    def tick(self) -> None:
        """Periodic work (timers); called after each batch and whenever the inbox stayed empty for ``tick_s``."""

    def finish(self) -> None:
        """The inbox is closed and drained: flush what the stage still holds."""
