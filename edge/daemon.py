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
from pathlib import Path
from types import FrameType

from edge.capture import open_sources
from edge.config import Config, ModelsConfig
from edge.events.sink import Sink, make_sink
from edge.features.faces import FaceDetector
from edge.fusion_head import FusionHeadModel
from edge.models import FACE_MODEL, SPEECH_MODEL, shipped_fusion_head
from edge.pipeline.face import FaceTrackingParams
from edge.pipeline.fusion import FusionParams
from edge.pipeline.models import load_model
from edge.pipeline.pipeline import Pipeline, QueueSizes
from edge.runtime.backend import Backend
from edge.service import notify
from edge.smoothing import SmoothingParams

log = logging.getLogger(__name__)

SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)
PAYLOADS_LOST = 3
"""Exit status of a run that ended cleanly but could not deliver every payload (broker away, buffer full)."""


def _model(path: Path, models: ModelsConfig) -> Backend:
    return load_model(path, models.backend, models.providers, models.threads)


def fusion_head(models: ModelsConfig, speech: Backend | None, face: Backend | None) -> FusionHeadModel | None:
    """The fusion head to use, checked against the speech and face models; None for decision-level fusion.

    That is ``models.fusion``, or the shipped head when the speech and face models are the shipped
    ones; none when ``models.model_fusion`` is false. With only one modality coming in, the head
    could never run: it is not loaded (with a warning when ``models.fusion`` names one).
    """
    path = models.fusion or shipped_fusion_head(models.speech, models.face)
    if not models.model_fusion or path is None:
        return None
    if speech is None or face is None:
        if models.fusion is not None:
            log.warning("models.fusion is set, but the sources bring only %s: fusing at the decision level",
                        "video" if speech is None else "audio")
        return None
    return FusionHeadModel(_model(path, models), speech=speech, face=face)


def build_pipeline(config: Config, sink: Sink) -> Pipeline:
    """Sources, models and stages as ``config`` says (models only for the modalities the sources bring)."""
    sources = open_sources(config.source.video, config.source.audio, config.source.realtime, config.source.loop)
    video = any(source.video for source in sources)
    audio = any(source.audio for source in sources)
    settings = config.pipeline
    faces = FaceTrackingParams(
        detect_every=settings.detect_every, max_faces=settings.max_faces, key_face_radius=settings.key_face_radius,
        iou_threshold=settings.track_iou, max_age=settings.track_max_age, min_hits=settings.track_min_hits,
    )
    smoothing = SmoothingParams(alpha=config.smoothing.ema_alpha, margin=config.smoothing.hysteresis,
                                hold=config.smoothing.hold)
    fusion = FusionParams(
        tolerance_s=settings.fusion_tolerance_s, voice_timeout_s=settings.voice_timeout_s,
        weights=(("face", settings.face_weight), ("speech", settings.speech_weight)), smoothing=smoothing,
        state_interval_s=config.output.state_interval_s, stats_interval_s=config.output.stats_interval_s,
    )
    face = _model(config.models.face or FACE_MODEL, config.models) if video else None
    speech = _model(config.models.speech or SPEECH_MODEL, config.models) if audio else None
    return Pipeline(
        sources,
        sink,
        face_model=face,
        speech_model=speech,
        detector=FaceDetector() if video else None,
        fusion_head=fusion_head(config.models, speech, face),
        faces=faces,
        fusion=fusion,
        queues=QueueSizes(frames=settings.frame_queue, audio=settings.audio_queue),
        stall_s=config.service.stall_s,
    )


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
