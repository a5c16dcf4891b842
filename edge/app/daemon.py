"""The daemon: builds sources, models, pipeline and sink from a Config, and runs until the end or a signal.

``run`` announces the device online, starts the pipeline, tells systemd READY=1 and pings its
watchdog while the pipeline is healthy and every source delivers (a source silent for
``service.stall_s`` stops the pings, so systemd restarts a daemon whose camera died). It returns
when a file source ends (without ``loop``), on SIGTERM or SIGINT, when the sink's reader has gone
(a closed stdout pipe), or when a part of the pipeline fails: then it tells systemd STOPPING=1,
stops the sources, drains every queue (what was captured is still processed and published), and closes
the sink, which publishes ``offline``. Exit status 0 after a clean end with every payload delivered,
1 after a failure, ``PAYLOADS_LOST`` (3) after a clean end when payloads were lost (counted in stats).
Nothing here writes frames or audio anywhere; only the sink's JSON payloads leave the process.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from edge.capture import open_sources
from edge.config.schema import Config
from edge.events.factory import make_sink
from edge.events.sink import Sink
from edge.models.loading import load_models
from edge.pipeline.pipeline import Pipeline
from edge.service import notify

log = logging.getLogger(__name__)

SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)
PAYLOADS_LOST = 3
"""Exit status of a run that ended cleanly but could not deliver every payload (broker away, buffer full)."""


def build_pipeline(config: Config, sink: Sink) -> Pipeline:
    """Sources, models and stages as ``config`` says (models only for the modalities the sources bring)."""
    sources = open_sources(config.source)
    models = load_models(config, video=any(source.video for source in sources),
                         audio=any(source.audio for source in sources))
    return Pipeline(sources, sink, face_model=models.face, speech_model=models.speech, detector=models.detector,
                    fusion_head=models.fusion_head, gate=models.gate, config=config)


@contextmanager
def shutdown_signals(event: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``event`` while inside (main thread only); the old handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(number: int, frame: FrameType | None) -> None:
        log.info("received %s: shutting down", signal.Signals(number).name)
        event.set()

    previous = {number: signal.signal(number, handler) for number in SHUTDOWN_SIGNALS}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


class Daemon:
    """One run of the pipeline from ``config`` (see the module docstring)."""

    def __init__(self, config: Config, sink: Sink | None = None, stop_requested: threading.Event | None = None) -> None:
        """Builds everything (models loaded, sources opened); ``stop_requested`` may be set meanwhile (a
        SIGTERM during start-up: ``run`` then stops at once)."""
        self.config = config
        self.stop_requested = stop_requested or threading.Event()
        log.info("loading models and opening sources")
        self.sink = sink or make_sink(config.output)
        try:
            self.pipeline = build_pipeline(config, self.sink)
        except BaseException:
            self.sink.close()
            raise

    def _report_stalls(self, before: list[str]) -> list[str]:
        """The stalled sources now (``service.stall_s``), logging and reporting each change of that list."""
        bound = self.config.service.stall_s
        now = self.pipeline.stalled()
        if now != before:
            for name in sorted(set(now) - set(before)):
                log.warning("source %s delivered nothing for %.0f s: stalled (watchdog pings stop until it delivers)",
                            name, bound)
            for name in sorted(set(before) - set(now)):
                log.info("source %s delivers again", name)
            notify.status(f"stalled: {', '.join(now)}" if now else "running")
        return now

    def run(self) -> int:
        watchdog = notify.Watchdog() if self.config.service.watchdog else None
        with shutdown_signals(self.stop_requested):
            self.sink.available(True)
            self.pipeline.start()
            notify.ready(status=f"running: {', '.join(source.name for source in self.pipeline.sources)}")
            log.info("running; sources: %s", ", ".join(source.name for source in self.pipeline.sources))
            period = min(0.5, watchdog.period) if watchdog is not None and watchdog.period else 0.5
            stalled: list[str] = []
            while (not self.stop_requested.is_set() and self.pipeline.healthy() and not self.pipeline.sources_ended()
                   and not self.sink.reader_gone()):
                stalled = self._report_stalls(stalled)
                if watchdog is not None:
                    watchdog.ping(self.pipeline.healthy() and not stalled)
                self.stop_requested.wait(period)
            notify.stopping()
            drained = self.pipeline.shutdown()
            self.sink.close()
        error = self.pipeline.error
        if error is not None:
            log.error("stopped after a failure: %s", error)
            return 1
        if not drained:
            return 1
        lost = int(self.sink.stats()["dropped"])
        if lost:
            log.error("stopped, but %d payloads were not delivered (see stats.events_dropped)", lost)
            return PAYLOADS_LOST
        log.info("stopped")
        return 0
