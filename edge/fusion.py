"""Fusing modality posteriors onto the 7-class product taxonomy (decision level).

Each modality's posterior is first mapped onto ``EMOTIONS`` (RAVDESS ``calm`` adds to
``neutral``); the fused posterior is the normalised weighted sum of log-posteriors. With one
modality present, the result is that modality's mapped posterior.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from edge.taxonomy import EMOTIONS, mapping_matrix

_FLOOR = 1e-6


def to_emotions(posterior: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """A posterior over ``labels`` (or a batch of them) summed onto ``EMOTIONS``."""
    return np.asarray(posterior, dtype=np.float64) @ np.asarray(mapping_matrix(labels, EMOTIONS))


def decision_fusion(posteriors: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """Weighted log-posterior sum of per-modality posteriors over ``EMOTIONS``, renormalised."""
    if not posteriors:
        raise ValueError("decision fusion needs at least one modality")
    missing = [name for name in posteriors if name not in weights]
    if missing:
        raise ValueError(f"no fusion weight for modalities {missing}")
    log_sum = sum(weights[name] * np.log(np.clip(p, _FLOOR, 1.0)) for name, p in posteriors.items())
    log_sum = np.asarray(log_sum, dtype=np.float64)
    fused = np.exp(log_sum - log_sum.max(axis=-1, keepdims=True))
    return fused / fused.sum(axis=-1, keepdims=True)
