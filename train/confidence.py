"""Calibrated posteriors: prior correction, temperature scaling and the expected calibration error.

A classifier trained on FER+ learns FER+'s class prior (a third of the faces are neutral). The
prior correction (logit adjustment, Menon et al. 2021) adds ``-tau * log(prior)`` to the logits:
``tau = 1`` turns a posterior under the training prior into one under a uniform prior, ``tau = 0``
keeps the training prior. Temperature scaling (Guo et al. 2017) then divides the corrected logits
by the ``T`` that minimises the negative log-likelihood on validation data. Both are stored in the
face model's configuration, so the exported graph applies them (``FaceCNN.calibrate``).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

ECE_BINS = 15


def expected_calibration_error(posteriors: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the sample-weighted mean |accuracy - confidence| over ``bins`` equal-width confidence bins."""
    posteriors, labels = np.asarray(posteriors), np.asarray(labels)
    confidence = posteriors.max(axis=1)
    correct = posteriors.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            error += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(error)


def prior_bias(prior: np.ndarray, tau: float) -> np.ndarray:
    """Logit offsets ``-tau * log(prior)``, shifted to mean 0 (softmax ignores a common shift)."""
    prior = np.asarray(prior, dtype=np.float64)
    if prior.ndim != 1 or (prior <= 0).any():
        raise ValueError(f"the prior must be a vector of positive class frequencies, got {prior}")
    bias = -tau * np.log(prior / prior.sum())
    return bias - bias.mean()


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean NLL of the labels under ``softmax(logits / temperature)``."""
    scaled = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    return float(-scaled[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature that minimises the validation NLL (bounded scalar search on log T)."""
    result = minimize_scalar(lambda log_t: negative_log_likelihood(logits, labels, float(np.exp(log_t))),
                             bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded")
    return float(np.exp(result.x))


def posterior_scores(posteriors: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, NLL and ECE (``ECE_BINS`` bins) of posteriors against integer labels."""
    posteriors, labels = np.asarray(posteriors, dtype=np.float64), np.asarray(labels)
    likelihood = np.clip(posteriors[np.arange(len(labels)), labels], 1e-12, None)
    return {"accuracy": float((posteriors.argmax(1) == labels).mean()), "nll": float(-np.log(likelihood).mean()),
            "ece": expected_calibration_error(posteriors, labels)}


def calibrated(logits: np.ndarray, bias: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax((logits + bias) / temperature)``, as ``FaceCNN`` computes it."""
    return softmax((np.asarray(logits, dtype=np.float64) + bias) / temperature, axis=1)
