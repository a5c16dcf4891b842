"""Speech windows of audio-visual clips with the faces seen during each window (Aghajani 2022's sampling).

A speech window of an AV cache clip starts at ``window_starts[i]`` on the video's time base and
lasts ``window_s`` seconds (the cache's MFCC settings); its faces are the aligned crops whose frame
time falls in ``[start, start + window_s)``. The window's *key face* is their medoid: Aghajani 2022's
key-face criterion (``edge.features.keyfaces.medoid``: least total distance to the other crops)
applied to the faces of the window, i.e. its most typical real frame, chosen without any model.
Benchmarks classify a window's key face; fusion training on real pairs may use every face of the
window. Windows with no face in range (no face detected for the whole window) are left out and
counted in ``without_face``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.errors import InputError
from edge.features.keyfaces import medoid
from train.data.feature_cache import AvClipFeatures


def faces_in_window(pts: np.ndarray, start: float, length: float) -> np.ndarray:
    """Indices of the frame times ``pts`` (seconds) inside ``[start, start + length)``."""
    pts = np.asarray(pts, dtype=np.float64)
    return np.flatnonzero((pts >= start) & (pts < start + length))


def key_face(crops: np.ndarray) -> int:
    """Index of the medoid crop of ``crops`` (n, S, S): the one with least total distance to the others."""
    if len(crops) == 0:
        raise ValueError("a window without faces has no key face")
    return medoid(np.asarray(crops, dtype=np.float32).reshape(len(crops), -1))


def window_seconds(manifest: dict[str, Any]) -> float:
    """The speech window length of a cache (its MFCC ``window_s``)."""
    return float(manifest["params"]["mfcc"]["window_s"])


@dataclass
class AlignedWindows:
    """Speech windows that have at least one face in range, over several clips, in clip order.

    ``crops`` holds every face crop of the clips once; windows refer to them by index (adjacent
    windows overlap, so one frame can belong to two windows). A ``subset`` shares ``crops``.
    """

    windows: np.ndarray
    """(n, channels, frames, coefficients) MFCC windows."""
    crops: np.ndarray
    """(m, S, S) every face crop of the clips."""
    faces: list[np.ndarray]
    """Per window, the indices into ``crops`` of the faces in its time range (at least one)."""
    key_faces: np.ndarray
    """(n,) per window, the index into ``crops`` of its key face (the medoid of its faces)."""
    take_ids: np.ndarray
    actors: np.ndarray
    label_ids: np.ndarray
    """RAVDESS label ids (``RAVDESS_LABELS`` order)."""
    starts: np.ndarray
    without_face: dict[str, int] = field(default_factory=dict)
    """Per clip, the windows left out because no face was seen during them."""

    def __len__(self) -> int:
        return len(self.windows)

    def subset(self, take_ids: Sequence[str]) -> AlignedWindows:
        """The windows of the clips ``take_ids`` (sharing ``crops``)."""
        wanted = set(take_ids)
        keep = np.isin(self.take_ids, list(wanted))
        return AlignedWindows(
            windows=self.windows[keep], crops=self.crops,
            faces=[f for f, k in zip(self.faces, keep, strict=True) if k], key_faces=self.key_faces[keep],
            take_ids=self.take_ids[keep], actors=self.actors[keep], label_ids=self.label_ids[keep],
            starts=self.starts[keep], without_face={t: n for t, n in self.without_face.items() if t in wanted})


def align_clips(clips: Sequence[AvClipFeatures], window_s: float) -> AlignedWindows:
    """Every speech window of ``clips`` with the faces in its time range and its key face."""
    windows, faces, keys, takes, actors, labels, starts = [], [], [], [], [], [], []
    without_face: dict[str, int] = {}
    offset = 0
    for clip in clips:
        for window, start in zip(clip.windows, clip.window_starts, strict=True):
            inside = faces_in_window(clip.pts, float(start), window_s)
            if len(inside) == 0:
                without_face[clip.take_id] = without_face.get(clip.take_id, 0) + 1
                continue
            windows.append(window)
            faces.append(offset + inside)
            keys.append(offset + inside[key_face(clip.crops[inside])])
            takes.append(clip.take_id)
            actors.append(clip.actor)
            labels.append(clip.label_id)
            starts.append(float(start))
        offset += len(clip.crops)
    if not windows:
        raise InputError(f"none of the {len(clips)} clips has a speech window with a face in range")
    return AlignedWindows(windows=np.stack(windows), crops=np.concatenate([c.crops for c in clips]), faces=faces,
                          key_faces=np.asarray(keys, dtype=np.int64), take_ids=np.asarray(takes),
                          actors=np.asarray(actors, dtype=np.int64), label_ids=np.asarray(labels, dtype=np.int64),
                          starts=np.asarray(starts), without_face=without_face)
