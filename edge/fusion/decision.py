"""Fusing modality posteriors onto the 7-class product taxonomy, and the rule that picks the fusion.

Each modality's posterior is first mapped onto ``EMOTIONS`` (RAVDESS ``calm`` adds to
``neutral``). ``decision_fusion`` is the normalised weighted sum of log-posteriors; with one
modality present, the result is that modality's mapped posterior. With ``by_confidence`` each
modality's weight is further multiplied, per input, by ``confidence_weight`` of its posterior
(1 minus its entropy over the entropy of a uniform posterior): a modality that is unsure of this
input (a flat posterior) counts less than one that is sure. ``fuse`` is the one rule the
daemon and ``emotion-edge classify`` share: the model-level fusion head (``edge.fusion.head``)
when one is loaded and both modalities brought an embedding, decision-level fusion otherwise (with
learned per-input weights when a reliability gate is loaded: ``edge.fusion.gate``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from edge.config.schema import PipelineConfig
from edge.taxonomy import EMOTIONS, mapping_matrix

_FLOOR = 1e-6
MODALITIES = ("face", "speech")
"""Modalities in the order events list them."""


class PosteriorGate(Protocol):
    """A learned decision-level fusion of both modalities' posteriors (``edge.fusion.gate.ReliabilityGate``)."""

    def fuse(self, posteriors: Mapping[str, np.ndarray]) -> np.ndarray:
        """The fused posterior over ``EMOTIONS`` of the face and speech posteriors."""
        ...


class EmbeddingFusion(Protocol):
    """A model-level fusion of speech and face embeddings (``edge.fusion.head.FusionHeadModel``)."""

    def posterior(self, speech: np.ndarray, face: np.ndarray) -> np.ndarray:
        """Posterior over ``EMOTIONS`` (7,) of one speech and one face embedding, or the mean posterior over
        every pair of rows of ``speech`` (n, ds) and ``face`` (m, df)."""
        ...


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def to_emotions(posterior: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """A posterior over ``labels`` (or a batch of them) summed onto ``EMOTIONS``."""
    return np.asarray(posterior, dtype=np.float64) @ np.asarray(mapping_matrix(labels, EMOTIONS))


def decision_weights(settings: PipelineConfig) -> dict[str, float]:
    """The decision-fusion weight of each modality (``pipeline.face_weight``, ``pipeline.speech_weight``)."""
    return {"face": settings.face_weight, "speech": settings.speech_weight}


def confidence_weight(posterior: np.ndarray) -> np.ndarray:
    """``1 - H(p) / log(K)`` of each posterior along the last axis (kept as a size-1 axis): 1 one-hot, 0 uniform."""
    p = np.clip(np.asarray(posterior, dtype=np.float64), _FLOOR, 1.0)
    entropy = -(p * np.log(p)).sum(axis=-1, keepdims=True)
    return np.clip(1.0 - entropy / np.log(p.shape[-1]), 0.0, 1.0)


def decision_fusion(posteriors: Mapping[str, np.ndarray], weights: Mapping[str, float],
                    by_confidence: bool = False) -> np.ndarray:
    """Weighted log-posterior sum of per-modality posteriors over ``EMOTIONS``, renormalised (see the module
    docstring for ``by_confidence``)."""
    if not posteriors:
        raise ValueError("decision fusion needs at least one modality")
    missing = [name for name in posteriors if name not in weights]
    if missing:
        raise ValueError(f"no fusion weight for modalities {missing}")
    log_sum = sum(weights[name] * (confidence_weight(p) if by_confidence else 1.0) * np.log(np.clip(p, _FLOOR, 1.0))
                  for name, p in posteriors.items())
    log_sum = np.asarray(log_sum, dtype=np.float64)
    fused = np.exp(log_sum - log_sum.max(axis=-1, keepdims=True))
    return fused / fused.sum(axis=-1, keepdims=True)


def fuse(
    posteriors: Mapping[str, np.ndarray],
    weights: Mapping[str, float],
    embeddings: Mapping[str, np.ndarray | None] | None = None,
    head: EmbeddingFusion | None = None,
    by_confidence: bool = False,
    gate: PosteriorGate | None = None,
) -> tuple[np.ndarray, str]:
    """The fused posterior over ``EMOTIONS`` and how it was made.

    ``"model"``: ``head`` on the speech and face embeddings, when a head is given and both
    modalities are present with an embedding; otherwise, with both posteriors, ``gate`` when one is given,
    else ``decision_fusion`` of the posteriors (weighted by confidence with ``by_confidence``):
    ``"decision"`` with both modalities, ``"face_only"`` / ``"speech_only"`` with one.
    """
    embeddings = embeddings or {}
    speech, face = embeddings.get("speech"), embeddings.get("face")
    if head is not None and set(posteriors) == set(MODALITIES) and speech is not None and face is not None:
        return np.asarray(head.posterior(speech, face), dtype=np.float64), "model"
    if gate is not None and set(posteriors) == set(MODALITIES):
        return np.asarray(gate.fuse(posteriors), dtype=np.float64), "decision"
    fused = decision_fusion(posteriors, weights, by_confidence)
    return fused, "decision" if len(posteriors) > 1 else f"{next(iter(posteriors))}_only"
