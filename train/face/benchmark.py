"""``emotion-bench face-fer``, ``face-ferplus`` and ``face-ravdess``: the face CNN beside the peer, on the same crops.

Every face benchmark scores our face CNN and, in the same run on exactly the same gray crops, the
`fer` package's mini-Xception (``train.face.peer``; ``--no-peer`` leaves it out):

- ``face-fer``: a FER2013-style test folder with its original labels (the 7,178 test images);
- ``face-ferplus``: FER+ PrivateTest (FER2013Test) scored against the FER+ majority label, images
  whose majority is contempt/unknown/not-a-face left out (``train.data.ferplus``);
- ``face-ravdess``: the aligned faces of an audio-visual RAVDESS cache, which neither model saw in
  training: frame accuracy, and clip accuracy by majority vote and by mean posterior over the
  clip's key faces and over all of its faces (calm counts as neutral, ``to_emotion7``).

Each reports accuracy, macro-F1, per-class precision/recall/F1, the expected calibration error
(15 bins) of the posteriors, and writes ``results_<benchmark>.json`` and one confusion PNG per
model to ``--out``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from edge.errors import InputError
from edge.taxonomy import EMOTIONS, RAVDESS_LABELS, to_emotion7
from train.confidence import expected_calibration_error
from train.data.feature_cache import AvCache
from train.metrics import score, vote
from train.reports import print_table

DEFAULT_MODEL = Path("runs/face_fer/face_cnn.pt")
VOTES = ("key_majority", "key_mean", "all_majority", "all_mean")
OURS = "face CNN"
Predictor = Callable[[np.ndarray], np.ndarray]
"""Gray uint8 crops (N, S, S) -> posteriors (N, 7) in ``EMOTIONS`` order."""


def per_class(truth: np.ndarray, predicted: np.ndarray, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support of every class."""
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=list(range(len(labels))), zero_division=0)
    return [{"class": label, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)]




def image_scores(posteriors: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro-F1, ECE, confusion and per-class rows of one model's posteriors."""
    predicted = posteriors.argmax(1)
    scores = score(truth, predicted, len(EMOTIONS))
    return {**scores.to_dict(), "ece": expected_calibration_error(posteriors, truth),
            "per_class": per_class(truth, predicted, EMOTIONS)}


def print_side_by_side(results: dict[str, dict[str, Any]], title: str) -> None:
    """One row per model (accuracy, macro-F1, ECE), then each class's recall per model."""
    print_table([{"model": name, **r} for name, r in results.items()], ("model", "accuracy", "macro_f1", "ece"),
                title=title, digits=4)
    rows = [{"class": label, **{name: r["per_class"][i]["recall"] for name, r in results.items()},
             "support": next(iter(results.values()))["per_class"][i]["support"]}
            for i, label in enumerate(EMOTIONS)]
    print_table(rows, ("class", *results, "support"), title="per-class recall")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")








def clip_truth(label_id: int, labels: Sequence[str]) -> int:
    """A RAVDESS label id as an index of the model's ``labels`` (calm -> neutral)."""
    mapped = to_emotion7(RAVDESS_LABELS[label_id])
    if mapped not in labels:
        raise InputError(f"RAVDESS label {RAVDESS_LABELS[label_id]!r} has no class among {list(labels)}")
    return list(labels).index(mapped)


def evaluate_clips(run: Predictor, cache: AvCache, labels: Sequence[str] = EMOTIONS) -> list[dict[str, Any]]:
    """Per clip: truth, frame posteriors' votes (key faces and all faces), frame predictions and accuracy."""
    rows = []
    for clip in cache.clips:
        posteriors = run(clip.crops)
        truth = clip_truth(clip.label_id, labels)
        key = posteriors[clip.key_faces]
        decisions = {"key_majority": vote(key, "majority"), "key_mean": vote(key, "mean"),
                     "all_majority": vote(posteriors, "majority"), "all_mean": vote(posteriors, "mean")}
        rows.append({"take_id": clip.take_id, "truth": labels[truth], "truth_id": truth,
                     "faces": len(clip.crops), "key_faces": len(clip.key_faces),
                     "frame_correct": int((posteriors.argmax(1) == truth).sum()),
                     "key_correct": int((key.argmax(1) == truth).sum()),
                     "frame_predictions": posteriors.argmax(1).tolist(),
                     **{name: labels[d] for name, d in decisions.items()},
                     **{f"{name}_id": d for name, d in decisions.items()}})
    return rows


def ravdess_summary(rows: list[dict[str, Any]], labels: Sequence[str] = EMOTIONS) -> dict[str, Any]:
    """Frame, key-face and clip accuracies of ``evaluate_clips`` rows, with per-class frame and clip recall."""
    truth = [r["truth_id"] for r in rows]
    clip_scores = {name: score(truth, [r[f"{name}_id"] for r in rows], len(labels)) for name in VOTES}
    faces = sum(r["faces"] for r in rows)
    frame_truth = np.concatenate([[r["truth_id"]] * r["faces"] for r in rows])
    frame_predicted = np.concatenate([r["frame_predictions"] for r in rows])
    return {
        "clips": len(rows), "faces": faces, "key_faces": sum(r["key_faces"] for r in rows),
        "frame_accuracy": sum(r["frame_correct"] for r in rows) / faces,
        "key_face_accuracy": sum(r["key_correct"] for r in rows) / sum(r["key_faces"] for r in rows),
        **{f"clip_accuracy_{name}": s.accuracy for name, s in clip_scores.items()},
        "frame_per_class": per_class(frame_truth, frame_predicted, labels),
        "clip_per_class_key_majority": per_class(np.array(truth), np.array([r["key_majority_id"] for r in rows]),
                                                 labels),
        "clip_scores": {name: s.to_dict() for name, s in clip_scores.items()},
    }






