"""``emotion-train face-calibrate``: fit the face CNN's temperature and class-prior correction."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from train.checkpoints import save_model
from train.data.ferplus import FERPLUS_RULE, load_ferplus
from train.face.confidence import calibrate_face_model
from train.face.training import MODEL_FILE, load_face_model
from train.reports import print_table, save_json


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
