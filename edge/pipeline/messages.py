"""What the pipeline's stages hand each other (crops to classify, track changes, posteriors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Modality = Literal["face", "speech"]


@dataclass(frozen=True, eq=False)
class CropJob:
    """An aligned gray key-face crop of a track, from the frame captured at ``t``."""

    track_id: int
    crop: np.ndarray
    t: float


@dataclass(frozen=True)
class TrackChanges:
    """One detection round's outcome: the tracks present now, and those that began or ended."""

    t: float
    present: tuple[int, ...]
    appeared: tuple[int, ...]
    lost: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Posterior:
    """A modality's posterior over ``EMOTIONS`` for the input captured up to ``t``.

    Face posteriors belong to ``track_id``; speech posteriors have no track (None). ``embedding``
    is the model's embedding of the same input (the fusion head's input), when it gave one.
    """

    modality: Modality
    track_id: int | None
    probabilities: np.ndarray
    t: float
    embedding: np.ndarray | None = None
