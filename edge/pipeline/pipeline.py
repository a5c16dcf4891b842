"""The assembled pipeline: sources, bounded queues and stages, started, watched and drained together.

    sources --frames--> faces (detect, track, align, key faces) --crops--> face-cnn --+
            --audio---> speech (VAD, MFCC windows, speech CNN) -----------------------+--> fusion --> sink
                                                                  (decision level, or a fusion head)

Capture items go through ``emit``: a live source's put never blocks (a full queue drops its
oldest item and counts it); a lossless source (a file replayed as fast as possible) waits for
room instead. ``shutdown`` stops the sources, then closes each queue once everything feeding it
has ended, so every item already captured is processed and published before the sink closes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from edge.capture.queues import DropOldestQueue
from edge.capture.source import Captured, CapturedFrame, Emit, Source
from edge.config.schema import Config
from edge.detectors.face import FaceDetector
from edge.events.sink import Sink
from edge.fusion.decision import EmbeddingFusion, PosteriorGate
from edge.pipeline.face import FaceClassifierStage, FaceTrackingStage
from edge.pipeline.fusion import FusionStage
from edge.pipeline.messages import CropJob, Posterior, TrackChanges
from edge.pipeline.model_inputs import face_features, speech_features
from edge.pipeline.speech import SpeechStage
from edge.pipeline.stage import Stage
from edge.pipeline.stats import RateMeter
from edge.runtime.backend import Backend

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Config()


class Pipeline:
    """Everything between the sources and the sink (see the module docstring)."""

    def __init__(
        self,
        sources: Sequence[Source],
        sink: Sink,
        *,
        face_model: Backend | None,
        speech_model: Backend | None,
        detector: FaceDetector | None,
        fusion_head: EmbeddingFusion | None = None,
        gate: PosteriorGate | None = None,
        config: Config = DEFAULT_CONFIG,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Settings from ``config``: ``[pipeline]`` (tracking, fusion, queues), ``[smoothing]``, the state and
        stats periods of ``[output]``, and ``service.stall_s`` (a running source silent for longer is stalled)."""
        self.sources, self.sink, self.clock = list(sources), sink, clock
        self.stall_s = config.service.stall_s
        settings = config.pipeline
        self.started = clock()
        self._last_item: dict[str, float] = {}   # source name -> when it last delivered (or the start)
        self.results: DropOldestQueue[TrackChanges | Posterior] = DropOldestQueue("results", settings.result_queue)
        self.frames: DropOldestQueue[CapturedFrame] | None = None
        self.audio: DropOldestQueue[Any] | None = None
        self.crops: DropOldestQueue[CropJob] | None = None
        self.frames_processed = RateMeter(self.started)
        self.tracking: FaceTrackingStage | None = None
        self.face_cnn: FaceClassifierStage | None = None
        self.speech: SpeechStage | None = None
        if face_model is not None:
            if detector is None:
                raise ValueError("a face model needs a face detector")
            self.frames = DropOldestQueue("frames", settings.frame_queue)
            self.crops = DropOldestQueue("crops", settings.crop_queue)
            self.tracking = FaceTrackingStage(self.frames, self.crops, self.results, detector,
                                              face_features(face_model), settings, self.frames_processed)
            self.face_cnn = FaceClassifierStage(self.crops, self.results, face_model)
        if speech_model is not None:
            self.audio = DropOldestQueue("audio", settings.audio_queue)
            mfcc, vad = speech_features(speech_model)
            self.speech = SpeechStage(self.audio, self.results, speech_model, mfcc, vad)
        self.fusion = FusionStage(self.results, sink, config, self._speech_active, self.stats_body, clock,
                                  fusion_head, gate=gate, health=self.health)

    @property
    def stages(self) -> list[Stage[Any]]:
        found = [self.tracking, self.face_cnn, self.speech, self.fusion]
        return [stage for stage in found if stage is not None]

    def _speech_active(self) -> bool:
        return self.speech is not None and self.speech.speech_active

    def emit_for(self, source: Source) -> Emit:
        """The function ``source`` hands its items to (see the module docstring)."""

        def emit(item: Captured) -> None:
            self._last_item[source.name] = self.clock()
            queue: DropOldestQueue[Any] | None = self.frames if isinstance(item, CapturedFrame) else self.audio
            if queue is None:
                return
            if not source.lossless:
                queue.put(item)
                return
            while not queue.put_wait(item, timeout=0.2):
                if queue.closed or source.stopping:
                    return

        return emit

    def start(self) -> None:
        started = self.clock()
        self._last_item = {source.name: started for source in self.sources}
        for stage in self.stages:
            stage.start()
        for source in self.sources:
            source.start(self.emit_for(source))

    def stalled(self) -> list[str]:
        """Names of the sources still running that delivered nothing for more than ``stall_s`` seconds."""
        if self.stall_s <= 0:
            return []
        now = self.clock()
        return [source.name for source in self.sources
                if not source.wait(0) and now - self._last_item.get(source.name, now) > self.stall_s]

    def health(self, sink_stats: dict[str, Any] | None = None) -> dict[str, Any]:
        """Progress, for the state and stats payloads: stalled sources, and whether the output is connected
        (``buffering``: a broker away, payloads held) or not; ``sink_stats``: the sink's, when already read."""
        stalled = self.stalled()
        sink = self.sink.stats() if sink_stats is None else sink_stats
        output = "connected" if sink.get("connected", False) else "buffering"
        return {"ok": self.error is None and not stalled and output == "connected", "stalled_sources": stalled,
                "output": output}

    def sources_ended(self) -> bool:
        return all(source.wait(0) for source in self.sources)

    @property
    def error(self) -> BaseException | None:
        """The first failure of a source or stage, if any."""
        errors = [source.error for source in self.sources] + [stage.error for stage in self.stages]
        return next((error for error in errors if error is not None), None)

    def healthy(self) -> bool:
        """Every stage is running and nothing has failed."""
        return self.error is None and all(stage.alive for stage in self.stages)

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Stop the sources and drain every stage in order; True when all ended within ``timeout``."""
        deadline = self.clock() + timeout
        for source in self.sources:
            source.stop(timeout=max(0.0, deadline - self.clock()))
        for queue in (self.frames, self.audio):
            if queue is not None:
                queue.close()
        ended = True
        for stage in (self.tracking, self.face_cnn, self.speech):
            if stage is not None:
                ended = stage.join(max(0.0, deadline - self.clock())) and ended
        self.results.close()
        ended = self.fusion.join(max(0.0, deadline - self.clock())) and ended
        if not ended:
            log.error("the pipeline did not drain within %.0f s", timeout)
        return ended

    def stats_body(self) -> dict[str, Any]:
        """The body of a ``stats`` message: rates and counters since start, percentiles of the last period."""
        now = self.clock()
        sink = self.sink.stats()
        source_drops = sum(source.counters().get("callback_drops", 0) for source in self.sources)
        queues = [q for q in (self.frames, self.audio, self.crops, self.results) if q is not None]
        empty = {"p50": None, "p99": None}
        return {
            "uptime_s": round(now - self.started, 3),
            "fps": self.frames_processed.rate(now),
            "frames_captured": 0 if self.frames is None else self.frames.put_count,
            "health": self.health(sink),
            "frames_dropped": 0 if self.frames is None else self.frames.dropped,
            "faces_dropped": 0 if self.tracking is None else self.tracking.faces_dropped,
            "audio_blocks": 0 if self.audio is None else self.audio.put_count,
            "audio_dropped": (0 if self.audio is None else self.audio.dropped) + source_drops,
            "queue_depths": {queue.name: len(queue) for queue in queues},
            "latency_ms": self.fusion.latency_ms.take(),
            "events_buffered": int(sink.get("buffered", 0)),
            "events_dropped": int(sink.get("dropped", 0)),
            "inference_ms": {
                "face": empty if self.face_cnn is None else self.face_cnn.inference_ms.take(),
                "speech": empty if self.speech is None else self.speech.inference_ms.take(),
            },
        }
