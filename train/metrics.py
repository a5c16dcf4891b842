"""Classification metrics, clip-level voting over windows/frames, and fold summaries.

Results are reported per window/frame and per clip. A clip's decision is the majority vote of
its windows' argmax (ties broken by the mean posterior) or the argmax of the mean posterior.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score

VOTE_RULES = ("majority", "mean")


@dataclass(frozen=True)
class Scores:
    """Accuracy, macro-F1 and the confusion matrix (rows: truth, columns: prediction)."""

    accuracy: float
    macro_f1: float
    confusion: np.ndarray
    count: int

    def to_dict(self) -> dict[str, object]:
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "count": self.count,
            "confusion": self.confusion.tolist(),
        }


def score(truth: Sequence[int] | np.ndarray, predicted: Sequence[int] | np.ndarray, n_classes: int) -> Scores:
    """Scores of integer predictions against integer truth over ``n_classes`` classes."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    if truth.shape != predicted.shape or truth.size == 0:
        raise ValueError(f"need equal, non-empty label arrays, got {truth.shape} and {predicted.shape}")
    labels = list(range(n_classes))
    return Scores(
        accuracy=float(np.mean(truth == predicted)),
        macro_f1=float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)),
        confusion=confusion_matrix(truth, predicted, labels=labels),
        count=int(truth.size),
    )


def vote(posteriors: np.ndarray, rule: str = "majority") -> int:
    """A clip's class from its windows' posteriors (n_windows, n_classes).

    ``majority``: the most frequent argmax, ties broken by the larger mean posterior;
    ``mean``: the argmax of the mean posterior.
    """
    posteriors = np.asarray(posteriors, dtype=np.float64)
    if posteriors.ndim != 2 or len(posteriors) == 0:
        raise ValueError(f"need a non-empty (n_windows, n_classes) array, got shape {posteriors.shape}")
    mean = posteriors.mean(axis=0)
    if rule == "mean":
        return int(np.argmax(mean))
    if rule != "majority":
        raise ValueError(f"unknown vote rule {rule!r}; choose one of {VOTE_RULES}")
    counts = np.bincount(posteriors.argmax(axis=1), minlength=posteriors.shape[1])
    tied = np.flatnonzero(counts == counts.max())
    return int(tied[np.argmax(mean[tied])])


def clip_votes(posteriors: np.ndarray, clip_ids: Sequence[str] | np.ndarray, rule: str = "majority") -> dict[str, int]:
    """Per clip id, the class voted by all of its windows' posteriors."""
    clip_ids = np.asarray(clip_ids)
    return {str(clip): vote(posteriors[clip_ids == clip], rule) for clip in dict.fromkeys(clip_ids.tolist())}


def clip_mean_posteriors(posteriors: np.ndarray, clip_ids: Sequence[str] | np.ndarray,
                         labels: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per clip (first-seen order), the mean of its windows' posteriors and its label (that of its first window)."""
    clip_ids, labels = np.asarray(clip_ids), np.asarray(labels)
    clips = list(dict.fromkeys(clip_ids.tolist()))
    means = np.stack([posteriors[clip_ids == clip].mean(axis=0) for clip in clips])
    return means, np.asarray([labels[clip_ids == clip][0] for clip in clips])


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation over folds."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std())
