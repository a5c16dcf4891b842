"""``emotion-bench fusion-ravdess`` and ``fusion-cv``: the fusion benchmarks' command lines."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path
from typing import Any

import torch

from edge.errors import InputError
from edge.fusion.decision import MODALITIES
from edge.fusion.gate import load_gate
from edge.taxonomy import EMOTIONS
from train.cli.fusion_train import add_head_options, head_settings
from train.data.av_windows import window_seconds
from train.data.feature_cache import load_av_cache
from train.fusion.benchmark import ONE_ACTOR_NOTE, clip_rows, prepare_encoders, summarise
from train.fusion.cv import FOLD_MODES, SMOKE_NOTE, plan_folds, run_fold, speech_model_path
from train.fusion.data import (
    Encoder,
    check_av_cache,
    encode,
    load_speech_encoder,
    to_emotion_ids,
)
from train.fusion.eval import (
    METHODS,
    METRICS,
    aligned_posteriors,
    daemon_weights,
    macro_f1_note,
    method_rows,
    save_confusions,
    score_methods,
    scores_to_dict,
    window_rows,
)
from train.fusion.gate_fit import leave_one_group_out
from train.fusion.pairs import gate_method
from train.fusion.training import load_fusion_head
from train.reports import print_table, save_json

IN_DOMAIN_GATE = "gated_other_clips"


def _ravdess(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    speech = load_speech_encoder(args.speech_model)
    head, head_meta = load_fusion_head(args.fusion_head) if args.fusion_head else (None, None)
    cache = load_av_cache(args.cache)
    actors = sorted({clip.actor for clip in cache.clips})
    speech.check_unheard(actors, f"the AV cache {cache.directory.name}")
    face, aligned, faces = prepare_encoders(cache, args.face_model)
    check_av_cache(speech, face, cache.manifest, cache.directory)
    if head_meta is not None:
        speech.check_matches(head_meta["encoders"]["speech"], "speech")
        face.check_matches(head_meta["encoders"]["face"], "face")
    weights = daemon_weights()
    gates = {gate_method(path): load_gate(path) for path in args.gate}
    posteriors = aligned_posteriors(aligned, encode(speech, torch.from_numpy(aligned.windows)), faces, head, weights,
                                    gates)
    truth = to_emotion_ids(aligned.label_ids)
    if args.gate_per_clip:
        posteriors[IN_DOMAIN_GATE] = leave_one_group_out({m: posteriors[m] for m in MODALITIES}, truth,
                                                         aligned.take_ids)
    scores = score_methods(posteriors, truth, aligned.take_ids)
    note = ONE_ACTOR_NOTE.format(n=len(actors), actors=actors, clips=len(cache.clips))
    rows = [{"method": method, **row} for method, row in method_rows(posteriors, scores, truth,
                                                                      aligned.take_ids).items()]
    clips = clip_rows(aligned, posteriors)
    windows = window_rows(aligned, posteriors)
    print_table(windows, ("take_id", "start_s", "faces", "truth", *posteriors), digits=2,
                title="per window (its key face among the faces seen during it), each method's label")
    print_table(clips, ("take_id", "truth", "windows", *posteriors),
                title="per clip, decision by majority vote / mean posterior over its windows")
    print_table(rows, ("method", *METRICS, "windows", "clips"),
                title=f"audio-visual fusion on {cache.directory.name}: {note}")
    dropped = sum(aligned.without_face.values())
    print(f"{len(aligned)} speech windows, each with the key face of the frames seen during it"
          + (f"; {dropped} windows without a face left out" if dropped else "")
          + f"; decision fusion weights {weights}; {macro_f1_note(truth)}. NOTE: {note}.")
    out: Path = args.out
    save_confusions({m: {name: s.confusion for name, s in by.items()} for m, by in scores.items()}, out,
                    f"AV fusion, actor(s) {actors} only")
    save_json(out / "results.json", {
        "benchmark": "fusion-ravdess", "note": note, "command": " ".join(sys.argv), "cache": str(cache.directory),
        "cache_params_hash": cache.manifest["params_hash"], "actors": actors, "labels": list(EMOTIONS),
        "label_mapping": "RAVDESS labels through edge.taxonomy.to_emotion7 (calm -> neutral)",
        "window_faces": "each speech window with the key face (medoid) of the face crops whose frame time falls in "
                        f"its {window_seconds(cache.manifest)} s range",
        "windows_without_face": aligned.without_face, "decision_weights": weights,
        "encoders": {"speech": speech.describe(), "face": face.describe()},
        "fusion_head": args.fusion_head and str(args.fusion_head),
        "gates": {gate_method(path): str(path) for path in args.gate},
        "fusion_head_training": head_meta and head_meta["training"], "methods": {row["method"]: row for row in rows},
        "macro_f1": macro_f1_note(truth), "scores": scores_to_dict(scores), "clips": clips, "windows": windows,
    })
    print(f"results.json and confusion PNGs in {out}")
    return 0


def _cv(args: argparse.Namespace) -> int:
    settings = head_settings(args)
    cache = load_av_cache(args.cache)
    face, aligned, faces = prepare_encoders(cache, args.face_model)
    folds = plan_folds([clip.take_id for clip in cache.clips], args.folds_by, args.seed)
    speech: dict[int, Encoder] = {}
    for fold in folds:   # every check before any training: a leaking speech model is refused up front
        if fold.skipped is None:
            speech[fold.index] = load_speech_encoder(speech_model_path(fold, args.folds_by, args.speech_cv,
                                                                       args.speech_model))
            speech[fold.index].check_unheard(fold.test_actors, f"fold {fold.index} ({fold.name})")
            check_av_cache(speech[fold.index], face, cache.manifest, cache.directory)
    out: Path = args.out
    results = [run_fold(aligned, fold, speech[fold.index], faces, settings, out) if fold.skipped is None
               else fold.to_dict() for fold in folds]
    ran = [r for r in results if r["skipped"] is None]
    for r in results:
        if r["skipped"] is not None:
            print(f"fold {r['index']} ({r['name']}): skipped: {r['skipped']}")
    if not ran:
        raise InputError(f"{cache.directory}: no fold could run (reasons above)")
    summary = summarise(ran)
    smoke = args.folds_by == "take"
    rows: list[dict[str, Any]] = [{"fold": r["index"], "method": method, **r["methods"][method]}
                                  for r in ran for method in METHODS]
    rows += [{"fold": "mean ± std", "method": method,
              **{m: f"{summary[method][m]['mean']:.3f} ± {summary[method][m]['std']:.3f}" for m in METRICS}}
             for method in METHODS]
    title = (f"fusion {len(ran)}-fold CV by {args.folds_by} on {cache.directory.name} (folds "
             f"{[r['index'] for r in ran]} ran, {len(results) - len(ran)} skipped)")
    print_table(rows, ("fold", "method", *METRICS, "windows", "clips"),
                title=(f"{SMOKE_NOTE}\n" if smoke else "") + title)
    print("clip accuracy (mean posterior), mean ± std over folds: " + ", ".join(
        f"{m} {summary[m]['clip_mean_accuracy']['mean']:.3f} ± {summary[m]['clip_mean_accuracy']['std']:.3f}"
        for m in METHODS))
    f1_note = macro_f1_note(to_emotion_ids(aligned.label_ids))
    print(f"{f1_note} (in all; fewer in some folds).")
    if smoke:
        print(f"NOTE: {SMOKE_NOTE}.")
    save_confusions({m: summary[m]["confusion"] for m in METHODS}, out,
                    f"fusion CV by {args.folds_by}, folds {[r['index'] for r in ran]} summed"
                    + (" (smoke check)" if smoke else ""))
    save_json(out / "results.json", {
        "benchmark": "fusion-cv", "folds_by": args.folds_by, "note": SMOKE_NOTE if smoke else "actor-independent",
        "command": " ".join(sys.argv), "cache": str(cache.directory),
        "cache_params_hash": cache.manifest["params_hash"],
        "actors": sorted({c.actor for c in cache.clips}), "labels": list(EMOTIONS), "settings": settings.to_dict(),
        "decision_weights": daemon_weights(), "face_model": face.describe(), "macro_f1": f1_note,
        "threads": args.threads,
        "machine": platform.platform(), "cpu_count": os.cpu_count(),
        "summary": summary, "folds": results,
    })
    print(f"results.json and confusion PNGs in {out}")
    return 0


def add_fusion_commands(subparsers: Any) -> None:
    """``emotion-bench fusion-ravdess`` (one actor's AV clips) and ``emotion-bench fusion-cv`` (the AV protocol)."""
    ravdess = subparsers.add_parser(
        "fusion-ravdess", help="speech, face, decision and model-level fusion on the clips of an AV cache",
        description="Score each speech window of an AV cache with the key face of the frames seen during it: "
                    "speech only, face only, decision fusion (daemon weights) and the fusion head, per window and "
                    "per clip (majority vote, mean posterior). The speech model must never have heard the cache's "
                    "actors; the head must have been trained on these two encoders. Writes results.json and "
                    "confusion PNGs to --out.")
    cv = subparsers.add_parser(
        "fusion-cv", help="cross-validated fusion head trained on real time-aligned AV pairs",
        description="Fold k tests actors 6k+1..6k+6; for every fold whose test and training actors are in the AV "
                    "cache, train the fusion head on the training actors' windows with the faces seen during them "
                    "(model selection on one male and one female training actor) and score it beside speech only, "
                    "face only and decision fusion; mean ± std over the folds that ran. --folds-by take splits the "
                    "takes by statement and repetition instead: a smoke/protocol check for a one-actor cache, not "
                    "an actor-independent result.")
    for parser in (ravdess, cv):
        parser.add_argument("--cache", type=Path, required=True, metavar="DIR",
                            help="AV feature cache (`emotion-train cache av`)")
        parser.add_argument("--face-model", type=Path, required=True, metavar="FILE",
                            help="face model (face_cnn.pt of `emotion-train face`)")
    ravdess.add_argument("--speech-model", type=Path, required=True, metavar="FILE",
                         help="speech model that never heard the cache's actors, e.g. runs/speech_cv/fold0/"
                              "checkpoint.pt for actor 05")
    ravdess.add_argument("--fusion-head", type=Path, metavar="FILE",
                         help="fusion_head.pt of `emotion-train fusion` trained on these speech and face models "
                              "(default: none; model-level fusion is then left out)")
    ravdess.add_argument("--gate", type=Path, action="append", default=[], metavar="FILE",
                         help="also score this reliability gate (repeatable): gate.json ('gated') or gate_weights.json "
                              "('gated_weights') of `emotion-bench fusion-pairs`; fold 0's never saw actors 1-6")
    ravdess.add_argument("--gate-per-clip", action="store_true",
                         help=f"also score '{IN_DOMAIN_GATE}': for each clip, a gate without class bias fitted on "
                              "the other clips' windows (in-domain, same actor: what a deployment could fit on a "
                              "few labelled clips of its own; not actor-independent)")
    ravdess.add_argument("--threads", type=int, default=1, metavar="N", help="torch CPU threads (default 1)")
    ravdess.add_argument("--out", type=Path, default=Path("runs/fusion_ravdess"), metavar="DIR",
                         help="output folder (default runs/fusion_ravdess)")
    ravdess.set_defaults(run=_ravdess)
    speech = cv.add_mutually_exclusive_group(required=True)
    speech.add_argument("--speech-cv", type=Path, metavar="DIR",
                        help="output folder of `emotion-bench speech` (fold<k>/checkpoint.pt, results.json): fold k "
                             "uses fold k's model; a take fold the model of the fold that tests its actor")
    speech.add_argument("--speech-model", type=Path, metavar="FILE",
                        help="one speech model for every fold (refused for a fold whose test actors it heard)")
    cv.add_argument("--folds-by", choices=FOLD_MODES, default="actor",
                    help="actor: the actor-independent 4-fold protocol (default); take: split one actor's takes by "
                         "statement and repetition (smoke/protocol check only)")
    add_head_options(cv)
    cv.add_argument("--out", type=Path, default=Path("runs/fusion_cv"), metavar="DIR",
                    help="output folder (default runs/fusion_cv)")
    cv.set_defaults(run=_cv)
