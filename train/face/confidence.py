"""Fitting the face model's prior correction and temperature on validation (``emotion-train face-calibrate``).

Reads a trained face model, removes any calibration it has, adds the prior correction
``-tau * log(prior)`` (prior = the mean FER+ training target) and fits the temperature on the FER+
PublicTest majority labels (validation; PrivateTest is never read here). Writes the calibrated
model (``face_cnn.pt`` + ``config.json``, calibration in ``model_config`` and
``training.calibration``) and ``calibration.json`` with the validation NLL and ECE before and after.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from train.confidence import ECE_BINS, calibrated, fit_temperature, posterior_scores, prior_bias
from train.networks.face_cnn import FaceCNN, pixels
from train.trainer import predict


def log_posteriors(model: FaceCNN, images: np.ndarray) -> np.ndarray:
    """Log-posteriors of ``images`` under ``model``'s current calibration (the logits up to a per-row shift)."""
    return np.log(np.clip(predict(model, pixels(images)), 1e-12, None))


def calibrate_face_model(model: FaceCNN, prior: np.ndarray, val_images: np.ndarray, val_labels: np.ndarray,
                         tau: float) -> dict[str, Any]:
    """Set ``model``'s calibration (prior correction ``tau``, temperature fitted on the validation set), replacing
    any calibration it had."""
    model.calibrate(1.0, [0.0] * len(model.logit_bias))
    logits = log_posteriors(model, val_images)
    bias = prior_bias(prior, tau)
    temperature = fit_temperature(logits + bias, val_labels)
    before, after = calibrated(logits, np.zeros_like(bias), 1.0), calibrated(logits, bias, temperature)
    model.calibrate(temperature, bias.tolist())
    return {
        "prior_tau": tau, "prior": prior.tolist(), "logit_bias": bias.tolist(), "temperature": temperature,
        "fitted_on": f"FER+ PublicTest majority labels ({len(val_labels)} images)", "ece_bins": ECE_BINS,
        "validation": {"uncalibrated": posterior_scores(before, val_labels),
                       "calibrated": posterior_scores(after, val_labels)},
    }
