"""Class-matched pairs, cross-validated on actors, with out-of-fold posteriors: ``emotion-bench fusion-pairs``.

Only one RAVDESS actor has video here, so fusion is also measured on class-matched pairs: a RAVDESS
speech window with a FER+ face of the same 7-class emotion (calm with neutral). Every posterior is
out of sample: each speech window is scored by the speech CV fold model that never heard its actor
(``emotion-bench speech``, calibrated by a temperature fitted on that fold's own validation
actors), each face by the face model (trained on FER+ Training) on FER+ PublicTest (gate fitting)
or PrivateTest (test) images. For fold k the reliability gate (``edge.fusion.gate``) is fitted on
pairs of the other folds' actors x PublicTest faces and tested on fold k's actors x PrivateTest
faces, beside speech only, face only, decision fusion and confidence-weighted decision fusion
(the daemon's weights); accuracy, macro-F1 and ECE (15 bins) per fold, then mean and std. Two gates
are fitted (``GATES``): ``gated`` with its class bias, ``gated_weights`` without (only the modality
weights: it cannot learn the pairs' class mix). Gates fitted on the pairs of all 24 actors (PublicTest
faces) are written as the ones to ship; each fold's own are kept too (fold 0's never saw actors 1-6, so
they may be scored on actor 05's clips).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edge.errors import InputError
from edge.fusion.decision import to_emotions
from edge.fusion.gate import ReliabilityGate
from edge.taxonomy import EMOTIONS
from train.confidence import expected_calibration_error
from train.data.feature_cache import SpeechCache
from train.data.ferplus import FerPlusSet
from train.fusion.data import Encoder, class_matched_pairs, encode, to_emotion_ids
from train.fusion.eval import daemon_weights, method_posteriors
from train.fusion.gate_fit import fit_gate
from train.metrics import mean_std, score
from train.networks.face_cnn import pixels
from train.speech.benchmark import load_fold_model
from train.speech.confidence import calibrate_speech_model
from train.speech.training import windows_of
from train.trainer import predict

GATES = {"gated": ("gate.json", True), "gated_weights": ("gate_weights.json", False)}
"""Per gated method: its file name and whether it has a class bias (``fit_gate``'s ``class_bias``)."""
PAIR_METHODS = ("speech", "face", "decision", "decision_confidence", *GATES)
PAIR_METRICS = ("accuracy", "macro_f1", "ece")


@dataclass
class OutOfFold:
    """Every clean window's calibrated posterior over ``EMOTIONS`` from the fold model that never heard it."""

    posteriors: np.ndarray
    fold_of_window: np.ndarray
    labels: np.ndarray
    folds: list[dict[str, Any]]


def out_of_fold_speech(cv_dir: Path, cache: SpeechCache) -> OutOfFold:
    """Score each fold's test actors with that fold's model, calibrated on the fold's validation actors
    (every ``fold<k>/checkpoint.pt`` of ``cv_dir``; windows of actors in no fold stay out, fold -1)."""
    checkpoints = sorted(cv_dir.glob("fold*/checkpoint.pt"))
    if not checkpoints:
        raise InputError(f"{cv_dir}: no fold<k>/checkpoint.pt of `emotion-bench speech`")
    posteriors = np.full((len(cache.windows), len(EMOTIONS)), np.nan)
    fold_of_window = np.full(len(cache.windows), -1)
    folds = []
    for checkpoint in checkpoints:
        model, meta = load_fold_model(checkpoint)
        k = int(checkpoint.parent.name.removeprefix("fold"))
        training = meta["training"]
        fit = calibrate_speech_model(model, windows_of(cache, training["validation_actors"]))
        rows = np.flatnonzero(np.isin(cache.window_actors, training["test_actors"]))
        window_posteriors = predict(model, torch.from_numpy(cache.windows[rows]))
        posteriors[rows] = to_emotions(window_posteriors, meta["labels"])
        fold_of_window[rows] = k
        folds.append({"fold": k, "checkpoint": str(checkpoint), "test_actors": list(training["test_actors"]),
                      "validation_actors": list(training["validation_actors"]),
                      "temperature": fit["temperature"]})
    return OutOfFold(posteriors, fold_of_window, to_emotion_ids(cache.window_labels), folds)


def face_posteriors(face: Encoder, images: FerPlusSet) -> np.ndarray:
    """The face model's posteriors over ``EMOTIONS`` of a FER+ split."""
    return encode(face, pixels(images.images), description=f"faces ({images.split})")[1]


@dataclass
class Pairs:
    """Pairs as rows: each modality's posterior and the shared label."""

    posteriors: dict[str, np.ndarray]
    labels: np.ndarray


def make_pairs(speech: OutOfFold, windows: np.ndarray, faces: np.ndarray, face_labels: np.ndarray,
               per_window: int, seed: int) -> Pairs:
    """Every window of ``windows`` with ``per_window`` faces (rows of ``faces``) of its class."""
    labels = speech.labels[windows]
    speech_idx, face_idx = class_matched_pairs(labels, face_labels, per_window, np.random.default_rng(seed))
    return Pairs({"speech": speech.posteriors[windows[speech_idx]], "face": faces[face_idx]}, labels[speech_idx])


def scores_of(posteriors: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, dict[str, float]]:
    results = {}
    for method, posterior in posteriors.items():
        scored = score(labels, posterior.argmax(1), len(EMOTIONS))
        results[method] = {"accuracy": scored.accuracy, "macro_f1": scored.macro_f1,
                           "ece": expected_calibration_error(posterior, labels), "pairs": len(labels)}
    return results


def gate_method(path: Path) -> str:
    """The method name of a gate file: ``gated`` for gate.json, ``gated_weights`` for gate_weights.json."""
    return "gated" + path.stem.removeprefix("gate") if path.stem.startswith("gate") else f"gated_{path.stem}"


def fit_gates(pairs: Pairs) -> dict[str, ReliabilityGate]:
    """Every gate of ``GATES`` fitted on ``pairs``."""
    return {name: fit_gate(pairs.posteriors, pairs.labels, class_bias=bias) for name, (_, bias) in GATES.items()}


def run_pairs(speech: OutOfFold, val_faces: np.ndarray, val_labels: np.ndarray, test_faces: np.ndarray,
              test_labels: np.ndarray, per_window: int,
              seed: int) -> tuple[list[dict[str, Any]], list[dict[str, ReliabilityGate]]]:
    """Per fold: the gates fitted on the other folds' pairs and every method's scores on the fold's test pairs."""
    results, gates = [], []
    for fold in speech.folds:
        k = fold["fold"]
        inside = np.flatnonzero(speech.fold_of_window == k)
        outside = np.flatnonzero((speech.fold_of_window >= 0) & (speech.fold_of_window != k))
        fitting = make_pairs(speech, outside, val_faces, val_labels, per_window, seed + k)
        fold_gates = fit_gates(fitting)
        test = make_pairs(speech, inside, test_faces, test_labels, per_window, seed + 100 + k)
        results.append({"fold": k, "test_actors": fold["test_actors"], "fitting_pairs": len(fitting.labels),
                        "gates": {name: gate.to_dict() for name, gate in fold_gates.items()},
                        "scores": scores_of(method_posteriors(test.posteriors["speech"], test.posteriors["face"],
                                                              None, daemon_weights(), fold_gates), test.labels)})
        gates.append(fold_gates)
    return results, gates


def summary_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method, the mean and std over folds of every metric."""
    rows = []
    for method in PAIR_METHODS:
        row: dict[str, Any] = {"method": method}
        for metric in PAIR_METRICS:
            row[metric], row[f"{metric}_std"] = mean_std([r["scores"][method][metric] for r in results])
        rows.append(row)
    return rows
