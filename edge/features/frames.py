"""The check every frame passes before a detector or the aligner touches it."""

from __future__ import annotations

import numpy as np

from edge.errors import InputError


def check_frame(frame: np.ndarray) -> None:
    """Raise InputError unless frame is an HxW (gray) or HxWx3 (BGR) uint8 image with pixels."""
    if not isinstance(frame, np.ndarray):
        raise InputError(f"a frame must be a numpy array, got {type(frame).__name__}")
    shape_ok = frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)
    if not shape_ok or frame.dtype != np.uint8 or frame.size == 0:
        raise InputError(
            f"a frame must be an HxW or HxWx3 uint8 image, got shape {frame.shape} dtype {frame.dtype}"
        )
