"""Scoring fusion methods side by side: speech only, face only, decision-level and model-level fusion.

Every method gives a posterior over the 7-class ``EMOTIONS`` per item (a speech window with its
face): ``speech`` is the speech CNN's posterior mapped onto ``EMOTIONS`` (calm -> neutral),
``face`` the face CNN's, ``decision`` their ``edge.fusion.decision.decision_fusion`` with the daemon's
default weights (``edge.config.schema.PipelineConfig``), ``decision_confidence`` the same with each
modality also weighted by its confidence on the item (``pipeline.weight_by_confidence``), ``model``
the fusion head's, ``gated`` the reliability gate's (``edge.fusion.gate``). Every method also gets the
expected calibration error of its posteriors. Scores are given per window and per clip (majority vote
and mean posterior over the clip's windows, ``train.metrics.vote``), as table rows, JSON-ready dicts
and confusion PNGs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edge.config.schema import PipelineConfig
from edge.fusion.decision import decision_fusion, decision_weights
from edge.fusion.gate import ReliabilityGate
from edge.taxonomy import EMOTIONS
from train.confidence import expected_calibration_error
from train.data.av_windows import AlignedWindows
from train.fusion.data import Encoded, to_emotion_ids
from train.metrics import Scores, clip_mean_posteriors, clip_votes, score
from train.networks.fusion_head import FusionHead
from train.reports import save_confusion_png
from train.trainer import predict

METHODS = ("speech", "face", "decision", "decision_confidence", "model")
DECISIONS = ("window", "clip_majority", "clip_mean")
METRICS = ("window_accuracy", "window_macro_f1", "clip_majority_accuracy", "clip_mean_accuracy",
           "clip_mean_macro_f1", "window_ece", "clip_mean_ece")


def daemon_weights() -> dict[str, float]:
    """The decision-fusion weights the daemon uses by default."""
    return decision_weights(PipelineConfig())


def method_posteriors(speech: np.ndarray, face: np.ndarray, model: np.ndarray | None,
                      weights: Mapping[str, float],
                      gates: Mapping[str, ReliabilityGate] | None = None) -> dict[str, np.ndarray]:
    """Per method, posteriors (n, 7) over ``EMOTIONS``; ``model`` left out when there is no head; one method
    per entry of ``gates`` (its name: a reliability gate of ``edge.fusion.gate``)."""
    both = {"speech": speech, "face": face}
    posteriors = {"speech": speech, "face": face, "decision": decision_fusion(both, weights),
                  "decision_confidence": decision_fusion(both, weights, by_confidence=True)}
    if model is not None:
        posteriors["model"] = model
    for name, gate in (gates or {}).items():
        posteriors[name] = gate.fuse(both)
    return posteriors


def macro_f1_note(truth: np.ndarray) -> str:
    """How to read macro-F1 on data that holds only some of the classes."""
    present = len(np.unique(truth))
    return (f"macro-F1 averages all {len(EMOTIONS)} classes and a class absent from both truth and predictions "
            f"counts as 0: {present} of the {len(EMOTIONS)} emotions occur here")


def key_face_pairs(aligned: AlignedWindows, speech_embedding: torch.Tensor,
                   face_embedding: torch.Tensor) -> torch.Tensor:
    """The fusion head's input per window: its speech embedding and its key face's embedding.

    ``speech_embedding`` has one row per window, ``face_embedding`` one per crop of ``aligned.crops``.
    """
    return torch.cat([speech_embedding, face_embedding[aligned.key_faces]], dim=1)


def aligned_posteriors(aligned: AlignedWindows, speech: Encoded, faces: Encoded, head: FusionHead | None,
                       weights: Mapping[str, float],
                       gates: Mapping[str, ReliabilityGate] | None = None) -> dict[str, np.ndarray]:
    """Every method's posteriors on time-aligned windows, each window with its key face.

    ``speech`` is ``encode`` of the windows, ``faces`` ``encode`` of all of ``aligned.crops``.
    """
    fused = predict(head, key_face_pairs(aligned, speech[0], faces[0])) if head is not None else None
    return method_posteriors(speech[1], faces[1][aligned.key_faces], fused, weights, gates)


def score_methods(posteriors: Mapping[str, np.ndarray], truth: np.ndarray,
                  clip_ids: Sequence[str] | np.ndarray | None = None) -> dict[str, dict[str, Scores]]:
    """Per method, ``Scores`` per window and, with ``clip_ids``, per clip (majority, mean posterior)."""
    n = len(EMOTIONS)
    results: dict[str, dict[str, Scores]] = {}
    for method, posterior in posteriors.items():
        results[method] = {"window": score(truth, posterior.argmax(1), n)}
        if clip_ids is None:
            continue
        clip_truth = dict(zip(np.asarray(clip_ids).tolist(), np.asarray(truth).tolist(), strict=True))
        for rule in ("majority", "mean"):
            votes = clip_votes(posterior, clip_ids, rule)
            results[method][f"clip_{rule}"] = score([clip_truth[c] for c in votes], list(votes.values()), n)
    return results


def calibration_metrics(posterior: np.ndarray, truth: np.ndarray,
                        clip_ids: Sequence[str] | np.ndarray) -> dict[str, float]:
    """ECE (15 bins) of one method's window posteriors and of its clips' mean posteriors."""
    clip_mean, clip_truth = clip_mean_posteriors(posterior, clip_ids, truth)
    return {"window_ece": expected_calibration_error(posterior, truth),
            "clip_mean_ece": expected_calibration_error(clip_mean, clip_truth)}


def method_rows(posteriors: Mapping[str, np.ndarray], scores: Mapping[str, Mapping[str, Scores]], truth: np.ndarray,
                clip_ids: Sequence[str] | np.ndarray) -> dict[str, dict[str, Any]]:
    """Per method, ``metric_row`` of its scores with the ``calibration_metrics`` of its posteriors."""
    return {method: {**metric_row(scores[method]), **calibration_metrics(posteriors[method], truth, clip_ids)}
            for method in posteriors}


def metric_row(scores: Mapping[str, Scores]) -> dict[str, Any]:
    """The ``METRICS`` of one method's scores (clip metrics only when clips were scored)."""
    row: dict[str, Any] = {"window_accuracy": scores["window"].accuracy, "window_macro_f1": scores["window"].macro_f1,
                           "windows": scores["window"].count}
    if "clip_mean" in scores:
        row.update({"clip_majority_accuracy": scores["clip_majority"].accuracy,
                    "clip_mean_accuracy": scores["clip_mean"].accuracy,
                    "clip_mean_macro_f1": scores["clip_mean"].macro_f1, "clips": scores["clip_mean"].count})
    return row


def scores_to_dict(scores: Mapping[str, Mapping[str, Scores]]) -> dict[str, dict[str, Any]]:
    return {method: {name: s.to_dict() for name, s in by_decision.items()} for method, by_decision in scores.items()}


def window_rows(aligned: AlignedWindows, posteriors: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """One row per window: clip, start, faces in range, truth and each method's label and confidence."""
    truth = to_emotion_ids(aligned.label_ids)
    rows = []
    for i in range(len(aligned)):
        row: dict[str, Any] = {"take_id": str(aligned.take_ids[i]), "start_s": float(aligned.starts[i]),
                               "faces": len(aligned.faces[i]), "truth": EMOTIONS[truth[i]]}
        for method, posterior in posteriors.items():
            row[method] = EMOTIONS[int(posterior[i].argmax())]
            row[f"{method}_p"] = float(posterior[i].max())
        rows.append(row)
    return rows


def save_confusions(confusions: Mapping[str, Mapping[str, np.ndarray]], out: Path, title: str) -> list[Path]:
    """``confusion_<method>_<decision>.png`` for every method and decision."""
    return [save_confusion_png(matrix, EMOTIONS, out / f"confusion_{method}_{decision}.png",
                               title=f"{title}: {method}, {decision.replace('_', ' ')}")
            for method, by_decision in confusions.items() for decision, matrix in by_decision.items()]
