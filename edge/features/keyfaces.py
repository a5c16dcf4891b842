"""Key-face selection: the medoid of each sliding window of 2r+1 consecutive face crops (the key-face
selection of Aghajani 2022, the audio-visual seed paper).

Windows of 2r+1 faces start at 0, r, 2r, ... while they fit. If the last of them stops before the
end, one more window ends at the last face. Fewer than 2r+1 faces form one window over all of them.
In each window the key face is the crop with the least total Euclidean distance (float32, flattened)
to the other crops of the window; on a tie the earliest crop wins.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np

from edge.errors import InputError


def _check_radius(radius: int) -> None:
    if radius < 1:
        raise InputError(f"key-face radius must be at least 1, got {radius}")


def medoid(window: np.ndarray) -> int:
    """Index of the row of an (n, d) float32 array with the least total distance to the others."""
    totals = np.linalg.norm(window[:, None, :] - window[None, :, :], axis=2).sum(axis=1)
    return int(np.argmin(totals))


def window_bounds(n_faces: int, radius: int) -> list[tuple[int, int]]:
    """The [start, end) windows that key_face_indices looks at for n_faces faces."""
    _check_radius(radius)
    size = 2 * radius + 1
    if n_faces <= size:
        return [(0, n_faces)] if n_faces else []
    bounds = [(start, start + size) for start in range(0, n_faces - size + 1, radius)]
    if bounds[-1][1] < n_faces:
        bounds.append((n_faces - size, n_faces))
    return bounds


def _flatten(crops: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    try:
        stacked = np.asarray(crops, dtype=np.float32)
    except ValueError as exc:
        raise InputError(f"face crops must all have the same shape ({exc})") from exc
    if stacked.ndim < 2:
        raise InputError(f"face crops must be a sequence of arrays, got shape {stacked.shape}")
    return stacked.reshape(len(stacked), -1)


def key_face_indices(crops: Sequence[np.ndarray] | np.ndarray, radius: int) -> list[int]:
    """Indices of the key faces, strictly increasing (windows that share a key face give it once)."""
    _check_radius(radius)
    if len(crops) == 0:
        return []
    flat = _flatten(crops)
    chosen = {start + medoid(flat[start:end]) for start, end in window_bounds(len(flat), radius)}
    return sorted(chosen)


class KeyFaceSelector:
    """Streaming key_face_indices for one face track: push crops one by one, then finish().

    push returns the index of a key face as soon as its window is complete (each index once, in
    window order, which need not be increasing); finish returns the key face of the short or tail
    window, if any and not given before. Together they give exactly key_face_indices' set.
    """

    def __init__(self, radius: int) -> None:
        _check_radius(radius)
        self.radius = radius
        self._size = 2 * radius + 1
        self._window: deque[np.ndarray] = deque(maxlen=self._size)
        self._count = 0
        self._last_full_end = 0
        self._given: set[int] = set()
        self._shape: tuple[int, ...] | None = None

    def push(self, crop: np.ndarray) -> int | None:
        """Add the next crop; the index of a new key face when this crop completes a window."""
        if self._shape is None:
            self._shape = crop.shape
        elif crop.shape != self._shape:
            raise InputError(f"face crop shape {crop.shape} differs from the track's {self._shape}")
        self._window.append(np.asarray(crop, dtype=np.float32).reshape(-1))
        self._count += 1
        if self._count >= self._size and (self._count - self._size) % self.radius == 0:
            self._last_full_end = self._count
            return self._choose()
        return None

    def finish(self) -> int | None:
        """The key face of the window that ends at the last crop, unless a full window already did."""
        if self._count == 0 or self._last_full_end == self._count:
            return None
        return self._choose()

    def _choose(self) -> int | None:
        start = self._count - len(self._window)
        index = start + medoid(np.stack(self._window))
        # Only the last few indices can come again: forget those before the current window.
        self._given = {i for i in self._given if i >= start}
        if index in self._given:
            return None
        self._given.add(index)
        return index
