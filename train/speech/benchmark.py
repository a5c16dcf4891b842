"""``emotion-bench speech``: actor-independent 4-fold cross-validation of the speech CNN on RAVDESS.

Fold k tests actors 6k+1..6k+6 and trains on the other 18 (two of which, one male and one
female, are held out for early stopping; the test actors never steer training). Per fold it
reports window accuracy, clip accuracy by majority vote and by mean posterior over each clip's
windows, and macro-F1 (windows and clips); then mean ± std over folds, a table on stdout, a JSON
file and confusion-matrix PNGs summed over the folds. Fold checkpoints make a rerun resume;
``load_fold_model`` rebuilds a fold's model from its checkpoint and ``results.json`` (the fusion
benchmarks need speech models that never heard their test actors).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edge.errors import ModelFileError
from edge.features.mfcc import MfccParams
from edge.taxonomy import RAVDESS_LABELS
from train.data.feature_cache import MANIFEST, SpeechCache
from train.data.ravdess import Fold
from train.metrics import Scores, clip_votes, mean_std, score
from train.networks.speech_cnn import SpeechCNN
from train.speech.training import (
    TrainingSettings,
    architecture_meta,
    load_speech_model,
    model_summary,
    train_speech_model,
    windows_of,
)
from train.trainer import predict, training_seconds

N_FOLDS = 4
METRICS = ("window_accuracy", "window_macro_f1", "clip_accuracy_majority", "clip_macro_f1_majority",
           "clip_accuracy_mean", "clip_macro_f1_mean")
DECISIONS = ("window", "clip_majority", "clip_mean")


def evaluate_fold(cache: SpeechCache, fold: Fold, settings: TrainingSettings, out: Path) -> dict[str, Any]:
    """Train fold ``fold`` (resuming its checkpoint) and score it on its test actors."""
    directory = out / f"fold{fold.index}"
    directory.mkdir(parents=True, exist_ok=True)
    trained = train_speech_model(cache, fold.train_actors, settings.model_config, settings.config,
                                 settings.augment, checkpoint=directory / "checkpoint.pt",
                                 log_path=out / "train_log.jsonl", description=f"speech fold {fold.index}")
    test = windows_of(cache, fold.test_actors)
    posteriors = predict(trained.model, test.x)
    n_classes = len(RAVDESS_LABELS)
    truth = test.clip_labels()
    scores: dict[str, Scores] = {"window": score(test.y.numpy(), posteriors.argmax(1), n_classes)}
    for rule in ("majority", "mean"):
        votes = clip_votes(posteriors, test.take_ids, rule)
        scores[f"clip_{rule}"] = score([truth[c] for c in votes], list(votes.values()), n_classes)
    np.savez(directory / "test_posteriors.npz", posteriors=posteriors, take_ids=test.take_ids,
             labels=test.y.numpy())
    return {
        "fold": fold.index, "test_actors": list(fold.test_actors), "fit_actors": list(trained.fit_actors),
        "validation_actors": list(trained.validation_actors),
        "window_accuracy": scores["window"].accuracy, "window_macro_f1": scores["window"].macro_f1,
        "clip_accuracy_majority": scores["clip_majority"].accuracy,
        "clip_macro_f1_majority": scores["clip_majority"].macro_f1,
        "clip_accuracy_mean": scores["clip_mean"].accuracy, "clip_macro_f1_mean": scores["clip_mean"].macro_f1,
        "test_windows": scores["window"].count, "test_clips": scores["clip_majority"].count,
        "best_epoch": trained.fit.best_epoch, "epochs_run": len(trained.fit.history),
        "validation": trained.validation, "train_seconds": round(training_seconds(trained.fit), 1),
        "model": model_summary(trained.model), "model_config": trained.model.config(),
        "confusion": {name: s.confusion for name, s in scores.items()},
    }


def summarise(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation over folds of each metric, and the confusions summed over folds."""
    summary: dict[str, Any] = {}
    for metric in METRICS:
        mean, std = mean_std([f[metric] for f in folds])
        summary[metric] = {"mean": mean, "std": std}
    summary["confusion"] = {name: np.sum([f["confusion"][name] for f in folds], axis=0) for name in DECISIONS}
    return summary


def load_fold_model(checkpoint: str | Path) -> tuple[SpeechCNN, dict[str, Any]]:
    """A CV fold's speech model (best validation weights, eval mode) and metadata.

    ``checkpoint`` is ``<out>/fold<k>/checkpoint.pt`` of ``emotion-bench speech``: the trainer's
    checkpoint holds the weights (``best_state``, standardisation buffers included); the
    architecture and the actors come from fold k's entry in ``<out>/results.json``. The metadata
    has the keys of ``save_speech_model``'s that users of a model read: ``model_config``,
    ``labels``, ``features`` (MFCC/VAD settings, from the cache manifest; None when the cache is
    gone) and ``training`` (``fit_actors``, ``validation_actors``, ``test_actors``, cache, epochs).
    """
    path = Path(checkpoint)
    match = re.fullmatch(r"fold(\d+)", path.parent.name)
    results_path = path.parent.parent / "results.json"
    if not path.is_file():
        raise ModelFileError(f"{path}: no such speech fold checkpoint")
    if match is None or not results_path.is_file():
        raise ModelFileError(f"{path}: not a fold checkpoint of `emotion-bench speech` (expected "
                             "<out>/fold<k>/checkpoint.pt beside <out>/results.json)")
    results = json.loads(results_path.read_text())
    folds = [f for f in results.get("folds", []) if f.get("fold") == int(match.group(1))]
    if not folds:
        raise ModelFileError(f"{results_path}: has no results of fold {match.group(1)} (run that fold first)")
    fold = folds[0]
    try:
        model = SpeechCNN(**fold["model_config"])
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["best_state"])
    except (KeyError, TypeError, RuntimeError) as err:
        raise ModelFileError(f"{path}: cannot rebuild the fold's speech model ({err})") from err
    model.eval()
    manifest = Path(results["cache"]) / MANIFEST
    params = json.loads(manifest.read_text())["params"] if manifest.is_file() else None
    architecture: dict[str, Any] = {"model": type(model).__name__, "model_config": fold["model_config"],
                                    "labels": results["labels"], "features": None}
    if params is not None:
        architecture = architecture_meta(model, MfccParams(**params["mfcc"]).frames_per_window,
                                         {"mfcc": params["mfcc"], "vad": params["vad"]})
    meta = {
        **architecture,
        "training": {
            "cache": Path(results["cache"]).name, "cache_params_hash": results["cache_params_hash"],
            "fold": fold["fold"], "test_actors": fold["test_actors"], "fit_actors": fold["fit_actors"],
            "validation_actors": fold["validation_actors"], "best_epoch": fold["best_epoch"],
            "validation": fold["validation"], "settings": results["settings"],
        },
    }
    return model, meta


def load_any_speech_model(path: str | Path) -> tuple[SpeechCNN, dict[str, Any]]:
    """A speech model saved by ``emotion-train speech`` (or calibrated), or a fold checkpoint of ``emotion-bench
    speech`` (``load_fold_model``)."""
    path = Path(path)
    try:
        return load_speech_model(path)
    except ModelFileError as saved_error:
        if not (path.parent.parent / "results.json").is_file():
            raise saved_error from None
        return load_fold_model(path)
