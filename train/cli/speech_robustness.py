"""``emotion-bench speech-robustness``: each CV fold's speech model on its test takes, clean and degraded."""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge.errors import InputError
from edge.features.mfcc import MfccParams
from edge.features.vad import VadParams
from train.data.ravdess import actor_folds, index_ravdess
from train.reports import print_table, save_json
from train.speech.benchmark import N_FOLDS, load_fold_model
from train.speech.degrade import CONDITIONS
from train.speech.robustness import evaluate_fold, save_robustness_png, summary_rows


def run_robustness(data: Path, cv: Path, out: Path, folds: Sequence[int] | None = None,
                   conditions: Sequence[str] | None = None, svm: bool = True, seed: int = 0) -> list[dict[str, Any]]:
    """Score the fold models of ``cv`` on degraded takes of ``data``; print the table, write JSON and PNG to ``out``."""
    takes = [t for t in index_ravdess(data).takes if t.modality == 3]
    if not takes:
        raise InputError(f"{data}: no RAVDESS audio-only takes (modality 03)")
    chosen = [c for c in CONDITIONS if conditions is None or c.name in conditions or c.kind == "clean"]
    run_folds, results = [f for f in actor_folds(N_FOLDS) if folds is None or f.index in folds], []
    for fold in run_folds:
        model, meta = load_fold_model(cv / f"fold{fold.index}" / "checkpoint.pt")
        if meta["features"] is None:
            raise InputError(f"{cv}: the cache its folds were trained on is gone; its MFCC settings are unknown")
        mfcc, vad = MfccParams(**meta["features"]["mfcc"]), VadParams(**meta["features"]["vad"])
        results.append(evaluate_fold(model, fold, takes, mfcc, vad, chosen, svm=svm, seed=seed))
    rows = summary_rows(results, chosen)
    columns = [c for c in ("condition", "cnn_clip_accuracy", "cnn_std", "cnn_drop_points", "svm_clip_accuracy",
                           "svm_std", "svm_drop_points", "no_speech_clips") if c in rows[0]]
    indices = [f.index for f in run_folds]
    print_table(rows, columns, title=f"speech robustness, RAVDESS actor-independent folds {indices}, models of {cv}")
    out.mkdir(parents=True, exist_ok=True)
    save_robustness_png(rows, out / "robustness.png", title=f"speech, folds {indices}")
    report: dict[str, Any] = {"benchmark": "speech-robustness", "command": " ".join(sys.argv), "cv": str(cv),
                              "data": str(data), "seed": seed, "machine": platform.platform(),
                              "conditions": [c.name for c in chosen], "folds": results, "summary": rows}
    save_json(out / "robustness.json", report)
    print(f"table, robustness.json and robustness.png in {out}")
    return rows


def _run(args: argparse.Namespace) -> int:
    run_robustness(args.data, args.cv, args.out, args.folds, args.conditions, svm=not args.no_svm, seed=args.seed)
    return 0


def add_robustness_command(subparsers: Any) -> argparse.ArgumentParser:
    """``emotion-bench speech-robustness``."""
    parser = subparsers.add_parser(
        "speech-robustness", help="speech CV fold models on degraded test audio (noise, babble, reverb, band, level)",
        description="For each fold of an `emotion-bench speech` run, degrade the fold's test takes (white and "
                    "babble noise at 20/10/5 dB SNR, reverb, telephone band, level -20/+20 dB) and classify them "
                    "through the device's feature path with the fold's model and with the MFCC + RBF SVM baseline "
                    "(trained on the fold's clean training takes). Prints clip accuracy per condition (mean ± std "
                    "over folds) and the drop from clean; writes robustness.json and robustness.png to --out.")
    parser.add_argument("--data", type=Path, required=True, metavar="DIR",
                        help="RAVDESS speech folder (the takes the cache was built from)")
    parser.add_argument("--cv", type=Path, required=True, metavar="DIR",
                        help="output folder of `emotion-bench speech` (fold<k>/checkpoint.pt and results.json)")
    parser.add_argument("--out", type=Path, default=Path("runs/speech_robustness"), metavar="DIR",
                        help="output folder (default runs/speech_robustness)")
    parser.add_argument("--folds", type=int, nargs="+", choices=range(N_FOLDS), default=None, metavar="K",
                        help="only these folds (default: all)")
    parser.add_argument("--conditions", nargs="+", choices=[c.name for c in CONDITIONS], default=None,
                        metavar="NAME", help="only these conditions, besides clean (default: all)")
    parser.add_argument("--no-svm", action="store_true", help="leave the MFCC + SVM baseline out")
    parser.add_argument("--seed", type=int, default=0, help="seeds the noise, rooms and babble (default 0)")
    parser.set_defaults(run=_run)
    return parser
