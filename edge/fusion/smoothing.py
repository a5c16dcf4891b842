"""Temporal smoothing of one track's posteriors: an exponential moving average plus label hysteresis.

The smoothed posterior is ``s = ema_alpha * p + (1 - ema_alpha) * s`` (the first posterior is
taken as is). The reported label starts as the first posterior's argmax and switches to another
label only when that label leads the smoothed posterior and beats the current label's smoothed
probability by more than ``hysteresis`` on ``hold`` consecutive updates (``[smoothing]`` in the
configuration). The result is ``certain`` once the reported label's smoothed probability reaches
``min_confidence``, and stays so until it falls below ``min_confidence - hysteresis``; a change of
certainty counts as a change (the daemon then reports ``uncertain`` instead of the label). Pure: no
clocks, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edge.config.schema import SmoothingConfig
from edge.taxonomy import UNCERTAIN


@dataclass(frozen=True)
class Smoothed:
    """The result of one update: the smoothed posterior, the reported label index, and whether it changed."""

    posterior: np.ndarray
    label: int
    changed: bool
    certain: bool = True

    @property
    def confidence(self) -> float:
        """The smoothed probability of the reported label."""
        return float(self.posterior[self.label])

    def name(self, labels: Sequence[str]) -> str:
        """The reported label's name in ``labels``, or ``UNCERTAIN`` while the result is not certain."""
        return labels[self.label] if self.certain else UNCERTAIN


class EmotionSmoother:
    """EMA and hysteresis over one track's posteriors (see the module docstring)."""

    def __init__(self, params: SmoothingConfig) -> None:
        self.params = params
        self._posterior: np.ndarray | None = None
        self._label = -1
        self._candidate = -1
        self._streak = 0
        self._certain = False

    @property
    def label(self) -> int | None:
        """The reported label index, None before the first update."""
        return None if self._posterior is None else self._label

    def update(self, posterior: np.ndarray) -> Smoothed:
        """Fold in one posterior (a probability vector of fixed length)."""
        p = np.asarray(posterior, dtype=np.float64)
        if self._posterior is None:
            self._posterior = p.copy()
            self._label = int(np.argmax(p))
            self._certain = bool(p[self._label] >= self.params.min_confidence)
            return Smoothed(self._posterior.copy(), self._label, changed=True, certain=self._certain)
        if p.shape != self._posterior.shape:
            raise ValueError(f"posterior of shape {p.shape} given, the track's posteriors have {self._posterior.shape}")
        alpha = self.params.ema_alpha
        self._posterior = alpha * p + (1.0 - alpha) * self._posterior
        leader = int(np.argmax(self._posterior))
        lead = self._posterior[leader] - self._posterior[self._label]
        ahead = leader != self._label and lead > self.params.hysteresis
        if not ahead:
            self._candidate, self._streak = -1, 0
        elif leader == self._candidate:
            self._streak += 1
        else:
            self._candidate, self._streak = leader, 1
        changed = self._streak >= self.params.hold
        if changed:
            self._label, self._candidate, self._streak = leader, -1, 0
        confidence = self._posterior[self._label]
        threshold = self.params.min_confidence - (self.params.hysteresis if self._certain else 0.0)
        certain = bool(confidence >= threshold)
        changed = changed or certain != self._certain
        self._certain = certain
        return Smoothed(self._posterior.copy(), self._label, changed, certain)
