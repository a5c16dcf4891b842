"""``emotion-train face-calibrate``: the face model's prior correction and temperature, fitted on validation.

Reads a trained face model, removes any calibration it has, adds the prior correction
``-tau * log(prior)`` (prior = the mean FER+ training target) and fits the temperature on the FER+
PublicTest majority labels (validation; PrivateTest is never read here). Writes the calibrated
model (``face_cnn.pt`` + ``config.json``, calibration in ``model_config`` and
``training.calibration``) and ``calibration.json`` with the validation NLL and ECE before and after.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from train.calibration import (
    ECE_BINS,
    calibrated,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    prior_bias,
)
from train.checkpoints import save_model
from train.data.ferplus import FERPLUS_RULE, load_ferplus
from train.face_training import MODEL_FILE, load_face_model
from train.models.face_cnn import FaceCNN, pixels
from train.reports import print_table, save_json
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
        "validation": {
            "uncalibrated": {"nll": negative_log_likelihood(logits, val_labels),
                             "ece": expected_calibration_error(before, val_labels),
                             "accuracy": float((before.argmax(1) == val_labels).mean())},
            "calibrated": {"nll": negative_log_likelihood((logits + bias) / temperature, val_labels),
                           "ece": expected_calibration_error(after, val_labels),
                           "accuracy": float((after.argmax(1) == val_labels).mean())},
        },
    }


def _calibrate(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    model, meta = load_face_model(args.model)
    sets = load_ferplus(args.data, splits=("train", "validation"))
    report = calibrate_face_model(model, sets["train"].prior(), sets["validation"].images,
                                  sets["validation"].majority, args.prior_tau)
    rows = [{"model": name, **values} for name, values in report["validation"].items()]
    print_table(rows, ("model", "accuracy", "nll", "ece"),
                title=f"face model on FER+ PublicTest (validation), prior tau {args.prior_tau:g}, "
                      f"temperature {report['temperature']:.3f}", digits=4)
    meta = {**meta, "model_config": model.config(),
            "training": {**meta["training"], "calibration": {**report, "labels_rule": FERPLUS_RULE}}}
    path = save_model(args.out, MODEL_FILE, model, meta)
    save_json(args.out / "calibration.json", {"source_model": str(args.model), **report})
    print(f"{path} and calibration.json written")
    return 0


def add_face_calibration_command(subparsers: Any) -> None:
    """``emotion-train face-calibrate``."""
    parser = subparsers.add_parser(
        "face-calibrate", help="prior correction and temperature of a face model, fitted on FER+ validation",
        description="Add the prior correction -tau*log(FER+ training prior) to a face model's logits and fit its "
                    "temperature on the FER+ PublicTest majority labels; writes the calibrated model to --out.")
    parser.add_argument("--model", type=Path, required=True, metavar="FILE", help="face_cnn.pt of emotion-train face")
    parser.add_argument("--data", type=Path, required=True, metavar="DIR",
                        help="FER2013 root holding train/, test/ and ferplus_votes.csv")
    parser.add_argument("--prior-tau", type=float, default=0.0, metavar="TAU",
                        help="strength of the prior correction: 1 = uniform class prior, 0 = the training prior "
                             "(default 0: chosen on FER+ validation accuracy and macro-F1, see the model card)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the calibrated model")
    parser.add_argument("--threads", type=int, default=2, metavar="N", help="torch CPU threads (default 2)")
    parser.set_defaults(run=_calibrate)
