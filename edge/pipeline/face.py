"""The face stages: detection and tracking with key-face crops per track, then the face CNN batched over tracks.

``FaceTrackingStage`` runs YuNet on every ``detect_every``-th frame it takes (the tracker keeps
the boxes in between), follows at most ``max_faces`` faces with the IoU tracker (faces it already
follows first, then the largest new ones; the rest are counted in ``faces_dropped``),
aligns each matched face to a gray crop and passes per track a key face (``KeyFaceSelector``
over windows of 2r+1 crops, shifted by r; r = 0: every crop) to ``FaceClassifierStage``, which
runs the face CNN once over whatever crops are waiting, the newest per track.
A crop job carries the capture time of the newest frame that led to it (the one that completed
its key-face window), the time that event latencies are measured from.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from edge.capture.queues import DropOldestQueue
from edge.capture.source import CapturedFrame
from edge.config.schema import PipelineConfig
from edge.detectors.face import FaceDetector
from edge.features.alignment import AlignParams, align_face
from edge.features.keyfaces import KeyFaceSelector
from edge.fusion.decision import softmax, to_emotions
from edge.pipeline.messages import CropJob, Posterior, TrackChanges
from edge.pipeline.stage import Stage
from edge.pipeline.stats import PeriodPercentiles, RateMeter
from edge.pipeline.tracking import IouTracker
from edge.runtime.backend import Backend
from edge.steps import step


class _KeyFaces:
    """One track's key-face selection: the crops of the current window and the selector over them."""

    def __init__(self, radius: int) -> None:
        self.selector = KeyFaceSelector(radius) if radius > 0 else None
        self.crops: deque[np.ndarray] = deque(maxlen=2 * radius + 1)
        self.count = 0

    def push(self, crop: np.ndarray) -> np.ndarray | None:
        """The key face that ``crop`` completes, if any."""
        self.crops.append(crop)
        self.count += 1
        if self.selector is None:
            return crop
        return self._crop(self.selector.push(crop))

    def finish(self) -> np.ndarray | None:
        return None if self.selector is None else self._crop(self.selector.finish())

    def _crop(self, index: int | None) -> np.ndarray | None:
        return None if index is None else self.crops[index - (self.count - len(self.crops))]


class FaceTrackingStage(Stage[CapturedFrame]):
    """Frames in; key-face crops to ``crops`` and track changes to ``changes`` (see the module docstring)."""

    def __init__(
        self,
        frames: DropOldestQueue[CapturedFrame],
        crops: DropOldestQueue[CropJob],
        changes: DropOldestQueue[TrackChanges | Posterior],
        detector: FaceDetector,
        align: AlignParams,
        params: PipelineConfig,
        processed: RateMeter,
    ) -> None:
        super().__init__("faces", frames, outputs=[crops])
        self.crops, self.changes = crops, changes
        self.detector, self.align, self.params = detector, align, params
        self.tracker = IouTracker(params)
        self.faces_dropped = 0
        self.processed = processed
        self.detect_ms = PeriodPercentiles()
        self._key_faces: dict[int, _KeyFaces] = {}
        self._frames_seen = 0

    def process(self, batch: list[CapturedFrame]) -> None:
        for frame in batch:
            self._frames_seen += 1
            self.processed.tick()
            if (self._frames_seen - 1) % self.params.detect_every == 0:
                self._detect(frame)

    def _detect(self, frame: CapturedFrame) -> None:
        image = frame.image
        started = time.perf_counter()
        faces = self.detector.detect(image)
        self.detect_ms.add((time.perf_counter() - started) * 1000)
        with step("track"):
            update = self.tracker.update(faces, frame.t)
        self.faces_dropped += update.dropped
        if update.lost or self.tracker.tracks:  # before any crop, so fusion knows a track before its posteriors
            self.changes.put(TrackChanges(
                t=frame.t,
                present=tuple(track.track_id for track in self.tracker.tracks),
                appeared=tuple(track.track_id for track in update.appeared),
                lost=tuple(track.track_id for track in update.lost),
            ))
        for track in update.appeared:
            self._key_faces[track.track_id] = _KeyFaces(self.params.key_face_radius)
        for track in update.lost:
            self._key_faces.pop(track.track_id, None)
        for track in update.matched:
            with step("align"):
                crop = align_face(image, track.face.landmarks, self.align)
            with step("key faces"):
                key = self._key_faces[track.track_id].push(crop)
            if key is not None:
                self.crops.put(CropJob(track.track_id, key, frame.t))

    def finish(self) -> None:
        """Send each track's last key face (the short or tail window)."""
        for track in self.tracker.tracks:
            key = self._key_faces[track.track_id].finish()
            if key is not None:
                self.crops.put(CropJob(track.track_id, key, track.last_t))


class FaceClassifierStage(Stage[CropJob]):
    """Crops in; one face CNN run over the newest waiting crop of each track; posteriors to ``posteriors``."""

    def __init__(self, crops: DropOldestQueue[CropJob], posteriors: DropOldestQueue[TrackChanges | Posterior],
                 model: Backend) -> None:
        super().__init__("face-cnn", crops)
        self.posteriors, self.model = posteriors, model
        self.inference_ms = PeriodPercentiles()

    def process(self, batch: list[CropJob]) -> None:
        jobs = list({job.track_id: job for job in batch}.values())
        crops = np.stack([job.crop for job in jobs]).astype(np.float32)[:, None]
        started = time.perf_counter()
        with step("face CNN"):
            outputs = self.model.run(crops)
        self.inference_ms.add((time.perf_counter() - started) * 1000)
        probabilities = to_emotions(softmax(outputs["logits"]), self.model.sidecar.labels)
        embeddings = outputs.get("embedding", [None] * len(jobs))
        for job, p, embedding in zip(jobs, probabilities, embeddings, strict=True):
            self.posteriors.put(Posterior("face", job.track_id, p, job.t, embedding))
