"""Fitting the speech model's temperature on its validation actors, and scoring calibration per window and clip.

The temperature minimises the window-level NLL of the two actors held out for early stopping (training
data: test actors are never read here), because a window's posterior is what leaves the device. The
score reports accuracy, NLL and ECE (``train.confidence.ECE_BINS`` bins) per window and per clip (the mean
of the clip's window posteriors, as ``classify`` and the benchmark decide).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from train.confidence import ECE_BINS, fit_temperature, posterior_scores
from train.metrics import clip_mean_posteriors
from train.networks.speech_cnn import SpeechCNN
from train.speech.training import WindowSet
from train.trainer import predict


def clip_posteriors(posteriors: np.ndarray, windows: WindowSet) -> tuple[np.ndarray, np.ndarray]:
    """Per clip, the mean of its windows' posteriors, and its label (clips in first-seen order)."""
    return clip_mean_posteriors(posteriors, windows.take_ids, windows.y.numpy())


def calibration_scores(model: SpeechCNN, windows: WindowSet) -> dict[str, dict[str, float]]:
    """Accuracy, NLL and ECE of ``model`` (as calibrated now) on ``windows``, per window and per clip."""
    posteriors = predict(model, windows.x)
    return {"window": posterior_scores(posteriors, windows.y.numpy()),
            "clip": posterior_scores(*clip_posteriors(posteriors, windows))}


def calibrate_speech_model(model: SpeechCNN, validation: WindowSet) -> dict[str, Any]:
    """Set ``model``'s temperature from ``validation`` (replacing any it had); the fit and its scores."""
    model.calibrate(1.0)
    before = calibration_scores(model, validation)
    logits = np.log(np.clip(predict(model, validation.x), 1e-12, None))
    temperature = fit_temperature(logits, validation.y.numpy())
    model.calibrate(temperature)
    return {"temperature": temperature, "ece_bins": ECE_BINS,
            "fitted_on": f"window NLL of the validation actors ({len(validation.y)} windows)",
            "validation": {"uncalibrated": before, "calibrated": calibration_scores(model, validation)}}


def calibrate_fold(model: SpeechCNN, validation: WindowSet, test: WindowSet) -> dict[str, Any]:
    """A CV fold: the temperature fitted on its validation actors, and its test actors' scores before and after."""
    model.calibrate(1.0)
    uncalibrated = calibration_scores(model, test)
    fit = calibrate_speech_model(model, validation)
    return {**fit, "test": {"uncalibrated": uncalibrated, "calibrated": calibration_scores(model, test)}}


def summary_rows(folds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per level (window, clip) and calibration, each score's mean and std over folds."""
    rows = []
    for level in ("window", "clip"):
        for state in ("uncalibrated", "calibrated"):
            row: dict[str, Any] = {"level": level, "posterior": state}
            for metric in ("accuracy", "nll", "ece"):
                values = [f["test"][state][level][metric] for f in folds]
                row[metric], row[f"{metric}_std"] = float(np.mean(values)), float(np.std(values))
            rows.append(row)
    return rows
