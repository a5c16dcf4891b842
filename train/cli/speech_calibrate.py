"""``emotion-train speech-calibrate`` (a model's temperature) and ``emotion-bench speech-calibration`` (per CV fold)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from edge.errors import InputError
from train.checkpoints import save_model
from train.data.feature_cache import load_speech_cache
from train.data.ravdess import actor_folds
from train.reports import print_table, save_json
from train.speech.benchmark import N_FOLDS, load_any_speech_model, load_fold_model
from train.speech.confidence import calibrate_fold, calibrate_speech_model, summary_rows
from train.speech.training import MODEL_FILE, windows_of


def _calibrate(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    model, meta = load_any_speech_model(args.model)
    cache = load_speech_cache(args.cache)
    actors = meta["training"]["validation_actors"]
    report = calibrate_speech_model(model, windows_of(cache, actors))
    rows = [{"posterior": state, "level": level, **scores}
            for state, levels in report["validation"].items() for level, scores in levels.items()]
    print_table(rows, ("posterior", "level", "accuracy", "nll", "ece"), digits=4,
                title=f"speech model on its validation actors {actors}, temperature {report['temperature']:.3f}")
    meta = {**meta, "model_config": model.config(), "training": {**meta["training"], "calibration": report}}
    path = save_model(args.out, MODEL_FILE, model, meta)
    save_json(args.out / "calibration.json", {"source_model": str(args.model), **report})
    print(f"{path} and calibration.json written")
    return 0


def _bench(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    cache, folds = load_speech_cache(args.cache), []
    run = [f for f in actor_folds(N_FOLDS) if f.index in args.folds] if args.folds is not None else \
        [f for f in actor_folds(N_FOLDS) if (args.cv / f"fold{f.index}" / "checkpoint.pt").is_file()]
    if not run:
        raise InputError(f"{args.cv}: no fold checkpoints (fold<k>/checkpoint.pt of `emotion-bench speech`)")
    for fold in run:
        model, meta = load_fold_model(args.cv / f"fold{fold.index}" / "checkpoint.pt")
        report = calibrate_fold(model, windows_of(cache, meta["training"]["validation_actors"]),
                                windows_of(cache, fold.test_actors))
        folds.append({"fold": fold.index, "test_actors": list(fold.test_actors), **report})
    rows = summary_rows(folds)
    temperatures = ", ".join(f"{f['temperature']:.3f}" for f in folds)
    print_table(rows, ("level", "posterior", "accuracy", "accuracy_std", "nll", "nll_std", "ece", "ece_std"),
                title=f"speech calibration on the test actors of folds {[f['fold'] for f in folds]} of {args.cv} "
                      f"(temperatures {temperatures})", digits=4)
    save_json(args.out / "calibration.json", {"benchmark": "speech-calibration", "command": " ".join(sys.argv),
                                              "cv": str(args.cv), "cache": str(args.cache), "folds": folds,
                                              "summary": rows})
    print(f"calibration.json in {args.out}")
    return 0


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", type=Path, required=True, metavar="DIR",
                        help="the speech feature cache the model was trained on")
    parser.add_argument("--threads", type=int, default=2, metavar="N", help="torch CPU threads (default 2)")


def add_speech_calibration_command(subparsers: Any) -> None:
    """``emotion-train speech-calibrate``."""
    parser = subparsers.add_parser(
        "speech-calibrate", help="fit a speech model's temperature on its validation actors",
        description="Fit the temperature that minimises the window NLL of the two actors a speech model held out "
                    "for early stopping (recorded in the model); writes the calibrated model to --out.")
    parser.add_argument("--model", type=Path, required=True, metavar="FILE",
                        help="speech_cnn.pt of emotion-train speech, or a fold checkpoint of emotion-bench speech "
                             "(<out>/fold<k>/checkpoint.pt)")
    _add_common(parser)
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the calibrated model")
    parser.set_defaults(run=_calibrate)


def add_calibration_bench_command(subparsers: Any) -> None:
    """``emotion-bench speech-calibration``."""
    parser = subparsers.add_parser(
        "speech-calibration", help="speech CV fold models: temperature on validation actors, ECE on test actors",
        description="For each fold of an `emotion-bench speech` run, fit the temperature on the fold's validation "
                    "actors and score its test actors per window and per clip (mean posterior): accuracy, NLL and "
                    "ECE (15 bins) before and after, mean ± std over folds; writes calibration.json to --out.")
    parser.add_argument("--cv", type=Path, required=True, metavar="DIR",
                        help="output folder of `emotion-bench speech` (fold<k>/checkpoint.pt and results.json)")
    _add_common(parser)
    parser.add_argument("--folds", type=int, nargs="+", choices=range(N_FOLDS), default=None, metavar="K",
                        help="only these folds (default: every fold the run has)")
    parser.add_argument("--out", type=Path, default=Path("runs/speech_calibration"), metavar="DIR",
                        help="output folder (default runs/speech_calibration)")
    parser.set_defaults(run=_bench)
