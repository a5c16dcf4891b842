"""``emotion-bench fusion-pairs``: class-matched pairs with out-of-fold posteriors, and the reliability gate."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edge.fusion.gate import save_gate
from train.data.feature_cache import load_speech_cache
from train.data.ferplus import load_ferplus
from train.fusion.data import load_face_encoder
from train.fusion.eval import daemon_weights
from train.fusion.pairs import (
    GATES,
    PAIR_METHODS,
    PAIR_METRICS,
    face_posteriors,
    fit_gates,
    make_pairs,
    out_of_fold_speech,
    run_pairs,
    summary_rows,
)
from train.reports import print_table, save_json


def _run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    cache = load_speech_cache(args.cache)
    speech = out_of_fold_speech(args.speech_cv, cache)
    face = load_face_encoder(args.face_model)
    ferplus = load_ferplus(args.fer, ("validation", "test"))
    val_faces, test_faces = face_posteriors(face, ferplus["validation"]), face_posteriors(face, ferplus["test"])
    val_labels, test_labels = ferplus["validation"].majority, ferplus["test"].majority
    results, gates = run_pairs(speech, val_faces, val_labels, test_faces, test_labels, args.faces_per_window,
                               args.seed)
    out: Path = args.out
    provenance: dict[str, Any] = {
        "fitted_on": "class-matched pairs: out-of-fold calibrated speech posteriors x FER+ PublicTest faces",
        "speech_cv": str(args.speech_cv), "speech_cache": str(cache.directory), "face_model": face.describe(),
        "faces_per_window": args.faces_per_window, "seed": args.seed, "command": " ".join(sys.argv)}
    for result, fold_gates in zip(results, gates, strict=True):
        fold_dir = out / f"fold{result['fold']}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        for name, gate in fold_gates.items():
            save_gate(gate, fold_dir / GATES[name][0], {**provenance, "method": name, "speech_actors": "every "
                      f"actor except fold {result['fold']}'s test actors {result['test_actors']}"})
    everyone = make_pairs(speech, np.flatnonzero(speech.fold_of_window >= 0), val_faces, val_labels,
                          args.faces_per_window, args.seed)
    shipped = [str(save_gate(gate, out / GATES[name][0], {**provenance, "method": name, "speech_actors": "all 24",
                                                          "pairs": len(everyone.labels)}))
               for name, gate in fit_gates(everyone).items()]
    rows: list[dict[str, Any]] = [{"fold": r["fold"], "method": m, **r["scores"][m]}
                                  for r in results for m in PAIR_METHODS]
    summary = summary_rows(results)
    rows += [{"fold": "mean ± std", "method": row["method"],
              **{m: f"{row[m]:.3f} ± {row[m + '_std']:.3f}" for m in PAIR_METRICS}} for row in summary]
    print_table(rows, ("fold", "method", *PAIR_METRICS, "pairs"),
                title=f"class-matched pairs, CV by actor (folds {[f['fold'] for f in speech.folds]}), out-of-fold "
                      "posteriors (test: the fold's actors x FER+ PrivateTest; gate fitted on the other actors x "
                      "PublicTest)")
    save_json(out / "results.json", {
        "benchmark": "fusion-pairs", **provenance, "decision_weights": daemon_weights(),
        "speech_folds": speech.folds, "summary": summary, "folds": results, "gates": shipped})
    print(f"results.json, {' and '.join(f for f, _ in GATES.values())} (all actors) and the same per fold<k>/ in {out}")
    return 0


def add_pairs_command(subparsers: Any) -> None:
    """``emotion-bench fusion-pairs``."""
    parser = subparsers.add_parser(
        "fusion-pairs", help="fusion on class-matched pairs with out-of-fold posteriors; fits the reliability gate",
        description="Pair every RAVDESS speech window with FER+ faces of the same emotion. Speech posteriors are "
                    "out of fold (each window scored by the CV fold model that never heard its actor, calibrated on "
                    "that fold's validation actors); faces are FER+ PublicTest (gate fitting) and PrivateTest (test) "
                    "images the face model was not trained on. Per fold: the reliability gate fitted on the other "
                    "folds' pairs, scored on the fold's pairs beside speech, face and decision fusion (accuracy, "
                    "macro-F1, ECE); writes results.json, gate.json (with a class bias) and gate_weights.json "
                    "(without), fitted on all actors, and the same per fold<k>/.")
    parser.add_argument("--speech-cv", type=Path, required=True, metavar="DIR",
                        help="the --out folder of `emotion-bench speech` with all four folds")
    parser.add_argument("--cache", type=Path, required=True, metavar="DIR",
                        help="the speech cache the fold models were trained on")
    parser.add_argument("--face-model", type=Path, required=True, metavar="FILE",
                        help="the face model (face_cnn.pt or the exported .onnx), trained on FER+ Training")
    parser.add_argument("--fer", type=Path, required=True, metavar="DIR",
                        help="the FER2013 folder with test/ and ferplus_votes.csv")
    parser.add_argument("--faces-per-window", type=int, default=5, metavar="K",
                        help="faces of its class paired with every speech window (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="pairing seed (default 0)")
    parser.add_argument("--threads", type=int, default=1, metavar="N", help="torch CPU threads (default 1)")
    parser.add_argument("--out", type=Path, default=Path("runs/fusion_pairs"), metavar="DIR",
                        help="output folder (default runs/fusion_pairs)")
    parser.set_defaults(run=_run)
