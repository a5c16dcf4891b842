"""Parity checks that hold on any CPU: errors measured against the size of the signal.

Float32 kernels differ between CPUs (AVX-512 vs AVX2 vs NEON reorder sums and fuse multiply-adds), so
an absolute tolerance tuned on one machine can fail on another. ``assert_matches_signal`` bounds the
largest difference by ``rel`` times the peak-to-peak range of the expected values. For resampled
pixels, ``rel = 1e-4`` is a sampling-position tolerance of 1e-4 pixel at the steepest possible edge
(a full-range step between neighbours), far below any real bug (a half-pixel offset, a wrong
``align_corners``), which moves values by a sizeable part of the range.
"""

from __future__ import annotations

import numpy as np


def assert_matches_signal(actual: np.ndarray, expected: np.ndarray, rel: float = 1e-4) -> None:
    """``max |actual - expected| <= rel * ptp(expected)``, with the numbers in the message when not."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"shapes differ: {actual.shape} vs {expected.shape}"
    scale = float(np.ptp(expected))
    assert scale > 0, "the expected signal is constant: nothing to compare against"
    error = float(np.abs(actual - expected).max())
    assert error <= rel * scale, (f"max |difference| {error:.3g} exceeds {rel:g} of the signal's range {scale:.3g} "
                                  f"(relative {error / scale:.3g})")
