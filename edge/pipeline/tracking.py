"""An IoU tracker that gives detected faces stable track ids across detection rounds.

Each round the detections are matched to the current tracks by the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``) on 1 - IoU of their boxes; a pair below
``iou_threshold`` is no match. A new track is tentative until it has been matched ``min_hits``
times in a row, then it is confirmed (``appeared``). A track missed in more than ``max_age``
consecutive rounds ends (``lost`` if it was confirmed; a tentative one is dropped quietly).
Track ids start at 1 and are never reused within a run (0 is kept for "the voice" downstream).
With a ``capacity`` (the pipeline's ``max_faces``) the tracker holds at most that many tracks:
detections continuing a track always keep it, and new tracks start only while there is room,
largest face first; the detections left over are counted in ``TrackerUpdate.dropped``. So a
crowd of static faces keeps the same ids (the earliest ones) instead of trading places each
round when their sizes jitter.
Between detection rounds the pipeline keeps the last boxes; the tracker only sees rounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from edge.config.schema import PipelineConfig
from edge.detectors.face import Face


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over union of every (x, y, w, h) box in ``boxes_a`` with every one in ``boxes_b``."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    a_lo, a_hi = a[:, None, :2], a[:, None, :2] + a[:, None, 2:]
    b_lo, b_hi = b[None, :, :2], b[None, :, :2] + b[None, :, 2:]
    overlap = np.clip(np.minimum(a_hi, b_hi) - np.maximum(a_lo, b_lo), 0.0, None).prod(axis=2)
    union = a[:, None, 2:].prod(axis=2) + b[None, :, 2:].prod(axis=2) - overlap
    return np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)


@dataclass
class Track:
    """One followed face: its latest detection, when it was last seen, and how it has been matched."""

    track_id: int
    face: Face
    first_t: float
    last_t: float
    hits: int = 1
    misses: int = 0
    confirmed: bool = False


@dataclass
class TrackerUpdate:
    """What one detection round changed: confirmed tracks matched now, and tracks that began or ended."""

    matched: list[Track] = field(default_factory=list)
    appeared: list[Track] = field(default_factory=list)
    lost: list[Track] = field(default_factory=list)
    dropped: int = 0
    """Detections not followed this round because the tracker was at its capacity."""


class IouTracker:
    """Stable ids for faces over detection rounds (see the module docstring)."""

    def __init__(self, settings: PipelineConfig) -> None:
        """``track_iou``, ``track_max_age``, ``track_min_hits`` and ``max_faces`` (the capacity) of ``settings``."""
        self.iou_threshold = settings.track_iou
        self.max_age = settings.track_max_age
        self.min_hits = settings.track_min_hits
        self.capacity = settings.max_faces
        self._tracks: list[Track] = []
        self._next_id = 1

    @property
    def tracks(self) -> list[Track]:
        """The confirmed tracks, oldest first."""
        return [track for track in self._tracks if track.confirmed]

    def _match(self, faces: Sequence[Face]) -> list[tuple[int, int]]:
        if not self._tracks or not faces:
            return []
        iou = iou_matrix(np.stack([t.face.box for t in self._tracks]), np.stack([f.box for f in faces]))
        rows, cols = linear_sum_assignment(1.0 - iou)
        return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= self.iou_threshold]

    def update(self, faces: Sequence[Face], t: float) -> TrackerUpdate:
        """Match one round's detections (at capture time ``t``) to the tracks."""
        update = TrackerUpdate()
        pairs = dict(self._match(faces))
        kept: list[Track] = []
        for row, track in enumerate(self._tracks):
            if row in pairs:
                track.face, track.last_t, track.misses = faces[pairs[row]], t, 0
                track.hits += 1
                if not track.confirmed and track.hits >= self.min_hits:
                    track.confirmed = True
                    update.appeared.append(track)
            else:
                track.misses += 1
                if not track.confirmed or track.misses > self.max_age:
                    if track.confirmed:
                        update.lost.append(track)
                    continue
            kept.append(track)
        matched_faces = set(pairs.values())
        new = sorted((c for c in range(len(faces)) if c not in matched_faces),
                     key=lambda c: -float(faces[c].box[2] * faces[c].box[3]))
        if self.capacity is not None:
            room = max(0, self.capacity - len(kept))
            update.dropped = max(0, len(new) - room)
            new = new[:room]
        for column in sorted(new):   # in detection order, as before a capacity existed
            track = Track(track_id=self._next_id, face=faces[column], first_t=t, last_t=t,
                          confirmed=self.min_hits <= 1)
            self._next_id += 1
            kept.append(track)
            if track.confirmed:
                update.appeared.append(track)
        self._tracks = kept
        update.matched = [track for track in kept if track.confirmed and track.misses == 0]
        return update
