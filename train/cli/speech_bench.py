"""``emotion-bench speech``: the command line of the speech CNN's actor-independent cross-validation."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path
from typing import Any

from edge.taxonomy import RAVDESS_LABELS
from train import distributed
from train.cli.speech_robustness import run_robustness
from train.cli.speech_train import add_training_options, training_settings
from train.data.feature_cache import load_speech_cache
from train.data.ravdess import actor_folds
from train.reports import print_table, save_confusion_png, save_json
from train.speech.benchmark import DECISIONS, METRICS, N_FOLDS, evaluate_fold, summarise


def _run(args: argparse.Namespace) -> int:
    settings = training_settings(args)
    cache = load_speech_cache(args.cache)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    folds = [f for f in actor_folds(N_FOLDS) if args.folds is None or f.index in args.folds]
    distributed.init_from_env(args.device)
    rank, world = distributed.process_group_rank()
    if world > 1:   # under torchrun: the folds are split across the processes, each trained alone
        with distributed.solo():
            for fold in folds[rank::world]:
                evaluate_fold(cache, fold, settings, out)
        distributed.barrier()
        if rank != 0:
            return 0
    with distributed.solo():   # rank 0 gathers: every fold is trained by now, so each resumes complete
        results = [evaluate_fold(cache, fold, settings, out) for fold in folds]
    summary = summarise(results)
    rows: list[dict[str, Any]] = [{**r, "train_s": r["train_seconds"]} for r in results]
    rows.append({"fold": "mean", **{m: summary[m]["mean"] for m in METRICS}})
    rows.append({"fold": "std", **{m: summary[m]["std"] for m in METRICS}})
    print_table(rows, ("fold", *METRICS, "best_epoch", "train_s"),
                title=f"speech CNN, RAVDESS actor-independent {N_FOLDS}-fold CV (folds {[f.index for f in folds]})")
    print("clip accuracy (majority): " + f"{summary['clip_accuracy_majority']['mean']:.3f} ± "
          f"{summary['clip_accuracy_majority']['std']:.3f}; (mean posterior): "
          f"{summary['clip_accuracy_mean']['mean']:.3f} ± {summary['clip_accuracy_mean']['std']:.3f}")
    for name in DECISIONS:
        save_confusion_png(summary["confusion"][name], RAVDESS_LABELS, out / f"confusion_{name}.png",
                           title=f"speech CNN, {name.replace('_', ' ')}, summed over folds {[f.index for f in folds]}")
    save_json(out / "results.json", {
        "benchmark": "speech", "command": " ".join(sys.argv), "cache": str(cache.directory),
        "cache_params_hash": cache.manifest["params_hash"], "labels": list(RAVDESS_LABELS),
        "settings": settings.to_dict(), "threads": args.threads, "machine": platform.platform(),
        "cpu_count": os.cpu_count(), "model": results[0]["model"], "folds": results, "summary": summary,
    })
    print(f"results and confusion PNGs in {out}")
    if args.robustness is not None:
        run_robustness(args.robustness, out, out, [f.index for f in folds])
    return 0


def add_speech_command(subparsers: Any) -> argparse.ArgumentParser:
    """``emotion-bench speech``: the speech CNN's actor-independent 4-fold cross-validation."""
    parser = subparsers.add_parser(
        "speech", help="4-fold actor-independent CV of the speech CNN on a RAVDESS speech cache",
        description="Fold k tests actors 6k+1..6k+6 and trains on the other 18, two of which (one male, one "
                    "female) are held out for early stopping. Prints window accuracy, clip accuracy by "
                    "majority vote and by mean posterior, and macro-F1 per fold and mean ± std; writes "
                    "results.json and confusion PNGs to --out. Interrupted folds resume.")
    add_training_options(parser)
    parser.add_argument("--out", type=Path, default=Path("runs/speech_cv"), metavar="DIR",
                        help="output folder (default runs/speech_cv)")
    parser.add_argument("--folds", type=int, nargs="+", choices=range(N_FOLDS), default=None, metavar="K",
                        help="run only these folds (0-3), e.g. for a quick experiment (default: all)")
    parser.add_argument("--robustness", type=Path, metavar="DATA",
                        help="then score the fold models on degraded takes of this RAVDESS speech folder, beside "
                             "the MFCC + SVM baseline (as `emotion-bench speech-robustness`; written to --out)")
    parser.set_defaults(run=_run)
    return parser
