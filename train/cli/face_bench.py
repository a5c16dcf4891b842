"""``emotion-bench face-fer``, ``face-ferplus``, ``face-ravdess``: the face benchmarks' command lines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edge.errors import InputError
from edge.taxonomy import EMOTIONS
from train.confidence import ECE_BINS
from train.data.feature_cache import load_av_cache
from train.data.ferplus import FERPLUS_RULE, load_ferplus
from train.face.benchmark import (
    DEFAULT_MODEL,
    OURS,
    VOTES,
    Predictor,
    _slug,
    evaluate_clips,
    image_scores,
    print_side_by_side,
    ravdess_summary,
)
from train.face.peer import DEFAULT_PEER_MODEL, PEER_NAME, MiniXceptionPeer
from train.face.training import load_face_model, load_image_set, model_summary
from train.networks.face_cnn import pixels
from train.reports import print_table, save_confusion_png, save_json
from train.trainer import predict


def predictors(args: argparse.Namespace) -> tuple[dict[str, Predictor], dict[str, Any], dict[str, Any]]:
    """Our model (and the peer unless ``--no-peer``) as predictors, our model's meta and summary."""
    torch.set_num_threads(args.threads)
    model, meta = load_face_model(args.model)
    if tuple(meta["labels"]) != EMOTIONS:
        raise InputError(f"{args.model}: labels {meta['labels']} are not the product taxonomy {list(EMOTIONS)}")
    models: dict[str, Predictor] = {OURS: lambda crops: predict(model, pixels(crops))}
    if args.peer:
        models[PEER_NAME] = MiniXceptionPeer(args.peer_model or DEFAULT_PEER_MODEL, threads=args.threads).posteriors
    return models, meta, model_summary(model)


def _image_benchmark(args: argparse.Namespace, benchmark: str, images: np.ndarray, truth: np.ndarray,
                     described: str, extra: dict[str, Any]) -> int:
    models, meta, summary = predictors(args)
    results = {name: image_scores(run(images), truth) for name, run in models.items()}
    print_side_by_side(results, f"{described} ({len(truth)} images)")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, r in results.items():
        save_confusion_png(np.array(r["confusion"]), EMOTIONS, args.out / f"confusion_{benchmark}_{_slug(name)}.png",
                           title=f"{name}, {described} ({len(truth)} images)")
    save_json(args.out / f"results_{benchmark}.json", {
        "benchmark": benchmark, "command": " ".join(sys.argv), "model": str(args.model), "labels": EMOTIONS,
        "ece_bins": ECE_BINS, **extra, "results": results, "model_summary": summary, "training": meta["training"],
    })
    print(f"results_{benchmark}.json and confusion PNGs in {args.out}")
    return 0


def _fer(args: argparse.Namespace) -> int:
    images, truth = load_image_set(args.data)
    return _image_benchmark(args, "face-fer", images, truth, f"{args.data}, FER2013 labels",
                            {"data": str(Path(args.data).resolve())})


def _ferplus(args: argparse.Namespace) -> int:
    test = load_ferplus(args.data, splits=("test",))["test"]
    return _image_benchmark(args, "face-ferplus", test.images, test.majority, "FER+ PrivateTest, majority labels",
                            {"data": str(Path(args.data).resolve()), "split": "PrivateTest (FER2013Test)",
                             "labels_rule": FERPLUS_RULE, "left_out": test.left_out})


def _ravdess(args: argparse.Namespace) -> int:
    models, meta, summary = predictors(args)
    cache = load_av_cache(args.cache)
    actors = sorted({c.actor for c in cache.clips})
    per_model = {name: evaluate_clips(run, cache) for name, run in models.items()}
    summaries = {name: ravdess_summary(rows) for name, rows in per_model.items()}
    ours = per_model[OURS]
    clip_rows = [{"take_id": r["take_id"], "truth": r["truth"], "faces": r["faces"],
                  **{f"{_slug(name)}": per_model[name][i]["key_majority"] for name in models}}
                 for i, r in enumerate(ours)]
    print_table(clip_rows, ("take_id", "truth", "faces", *(_slug(n) for n in models)),
                title=f"{cache.directory.name}: {len(ours)} clips of actor(s) {actors}, majority of key faces")
    print_table([{"model": name, **s} for name, s in summaries.items()],
                ("model", "frame_accuracy", "key_face_accuracy", *(f"clip_accuracy_{v}" for v in VOTES)),
                title="accuracy per frame and per clip")
    print_table([{"class": label, **{name: s["frame_per_class"][i]["recall"] for name, s in summaries.items()},
                  "frames": next(iter(summaries.values()))["frame_per_class"][i]["support"]}
                 for i, label in enumerate(EMOTIONS)], ("class", *models, "frames"), title="per-class frame recall")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, s in summaries.items():
        save_confusion_png(np.array(s["clip_scores"]["key_majority"]["confusion"]), EMOTIONS,
                           args.out / f"confusion_face-ravdess_{_slug(name)}.png",
                           title=f"{name}, RAVDESS clips (majority of key faces, {len(ours)} clips)")
    save_json(args.out / "results_face-ravdess.json", {
        "benchmark": "face-ravdess", "command": " ".join(sys.argv), "model": str(args.model),
        "cache": str(cache.directory), "cache_params_hash": cache.manifest["params_hash"], "labels": EMOTIONS,
        "actors": actors, "label_mapping": "RAVDESS labels through edge.taxonomy.to_emotion7 (calm -> neutral)",
        "summaries": summaries, "clips": per_model, "model_summary": summary, "training": meta["training"],
    })
    print(f"results_face-ravdess.json and confusion PNGs in {args.out}")
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, metavar="FILE",
                        help=f"face model saved by `emotion-train face` (default {DEFAULT_MODEL})")
    parser.add_argument("--out", type=Path, default=Path("runs/face_fer/bench"), metavar="DIR",
                        help="output folder (default runs/face_fer/bench)")
    parser.add_argument("--threads", type=int, default=1, metavar="N", help="CPU threads of each model (default 1)")
    parser.add_argument("--no-peer", dest="peer", action="store_false",
                        help=f"leave out the {PEER_NAME} (run beside ours by default; needs the peers extra)")
    parser.add_argument("--peer-model", type=Path, default=None, metavar="FILE",
                        help="the peer's .tflite (default: the copy in train/face/peers/)")


def add_face_commands(subparsers: Any) -> None:
    """``emotion-bench face-fer``, ``face-ferplus`` and ``face-ravdess``."""
    fer = subparsers.add_parser(
        "face-fer", help="the face CNN and the peer on a FER2013-style test folder (original labels)",
        description="Score the face CNN and the peer on every image of a class-folder test set (FER2013 test: "
                    "7,178 images): accuracy, macro-F1, ECE, per-class precision/recall/F1; writes "
                    "results_face-fer.json and confusion PNGs to --out.")
    _common(fer)
    fer.add_argument("--data", type=Path, required=True, metavar="DIR",
                     help="test folder with one sub-folder per class, e.g. ../shared/data/fer2013/test")
    fer.set_defaults(run=_fer)
    ferplus = subparsers.add_parser(
        "face-ferplus", help="the face CNN and the peer on FER+ PrivateTest (majority labels)",
        description="Score the face CNN and the peer on FER+ PrivateTest against the FER+ majority label "
                    f"({FERPLUS_RULE}): accuracy, macro-F1, ECE, per-class rows; writes results_face-ferplus.json.")
    _common(ferplus)
    ferplus.add_argument("--data", type=Path, required=True, metavar="DIR",
                         help="FER2013 root holding train/, test/ and ferplus_votes.csv")
    ferplus.set_defaults(run=_ferplus)
    ravdess = subparsers.add_parser(
        "face-ravdess", help="frame and clip accuracy of the face CNN and the peer on an AV RAVDESS cache",
        description="Score the face CNN and the peer on the aligned faces of an AV cache (`emotion-train cache "
                    "av`): frame accuracy and clip accuracy by majority vote / mean posterior over key faces and "
                    "over all faces; RAVDESS calm counts as neutral. Writes results_face-ravdess.json to --out.")
    _common(ravdess)
    ravdess.add_argument("--cache", type=Path, required=True, metavar="DIR", help="AV feature cache folder")
    ravdess.set_defaults(run=_ravdess)
