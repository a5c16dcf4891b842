"""``emotion-bench face-fer`` and ``face-ravdess``: the trained face CNN on FER2013 test and on RAVDESS faces.

``face-fer`` scores the model on a FER2013-style test folder (the 7,178 test images): accuracy,
macro-F1, a per-class table (precision, recall, F1, support) and a confusion PNG.
``face-ravdess`` scores it on the aligned faces of an audio-visual RAVDESS cache, which the model
never saw in training: frame accuracy, and clip accuracy by majority vote and by mean posterior
over the clip's key faces and over all of its faces. RAVDESS labels are mapped onto the model's
labels with ``to_emotion7`` (calm counts as neutral). Both write ``results.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import precision_recall_fscore_support

from edge.errors import InputError
from edge.taxonomy import RAVDESS_LABELS, to_emotion7
from train.data.feature_cache import AvCache, load_av_cache
from train.face_training import load_face_model, load_image_set, model_summary
from train.metrics import score, vote
from train.models.face_cnn import FaceCNN, pixels
from train.reports import print_table, save_confusion_png, save_json
from train.trainer import predict

DEFAULT_MODEL = Path("runs/face_fer/face_cnn.pt")
VOTES = ("key_majority", "key_mean", "all_majority", "all_mean")


def per_class(truth: np.ndarray, predicted: np.ndarray, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support of every class."""
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=list(range(len(labels))), zero_division=0)
    return [{"class": label, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)]


def _load(args: argparse.Namespace) -> tuple[FaceCNN, dict[str, Any]]:
    torch.set_num_threads(args.threads)
    return load_face_model(args.model)


def _fer(args: argparse.Namespace) -> int:
    model, meta = _load(args)
    labels = meta["labels"]
    images, truth = load_image_set(args.data)
    predicted = predict(model, pixels(images)).argmax(1)
    scores = score(truth, predicted, len(labels))
    classes = per_class(truth, predicted, labels)
    print_table(classes, ("class", "precision", "recall", "f1", "support"),
                title=f"face CNN on {args.data} ({scores.count} images)")
    print(f"accuracy {scores.accuracy:.4f}, macro-F1 {scores.macro_f1:.4f}")
    args.out.mkdir(parents=True, exist_ok=True)
    save_confusion_png(scores.confusion, labels, args.out / "confusion_fer.png",
                       title=f"face CNN, {Path(args.data).name} ({scores.count} images)")
    save_json(args.out / "results_fer.json", {
        "benchmark": "face-fer", "command": " ".join(sys.argv), "model": str(args.model),
        "data": str(Path(args.data).resolve()), "labels": labels, **scores.to_dict(), "per_class": classes,
        "model_summary": model_summary(model), "training": meta["training"],
    })
    print(f"results_fer.json and confusion_fer.png in {args.out}")
    return 0


def clip_truth(label_id: int, labels: Sequence[str]) -> int:
    """A RAVDESS label id as an index of the model's ``labels`` (calm -> neutral)."""
    mapped = to_emotion7(RAVDESS_LABELS[label_id])
    if mapped not in labels:
        raise InputError(f"RAVDESS label {RAVDESS_LABELS[label_id]!r} has no class among {list(labels)}")
    return list(labels).index(mapped)


def evaluate_clips(model: FaceCNN, cache: AvCache, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Per clip: truth, frame posteriors' votes (key faces and all faces) and frame accuracy."""
    rows = []
    for clip in cache.clips:
        posteriors = predict(model, pixels(clip.crops))
        truth = clip_truth(clip.label_id, labels)
        key = posteriors[clip.key_faces]
        decisions = {"key_majority": vote(key, "majority"), "key_mean": vote(key, "mean"),
                     "all_majority": vote(posteriors, "majority"), "all_mean": vote(posteriors, "mean")}
        rows.append({"take_id": clip.take_id, "truth": labels[truth], "truth_id": truth,
                     "faces": len(clip.crops), "key_faces": len(clip.key_faces),
                     "frame_correct": int((posteriors.argmax(1) == truth).sum()),
                     "key_correct": int((key.argmax(1) == truth).sum()),
                     **{name: labels[d] for name, d in decisions.items()},
                     **{f"{name}_id": d for name, d in decisions.items()}})
    return rows


def _ravdess(args: argparse.Namespace) -> int:
    model, meta = _load(args)
    labels = meta["labels"]
    cache = load_av_cache(args.cache)
    rows = evaluate_clips(model, cache, labels)
    truth = [r["truth_id"] for r in rows]
    n = len(labels)
    clip_scores = {name: score(truth, [r[f"{name}_id"] for r in rows], n) for name in VOTES}
    faces = sum(r["faces"] for r in rows)
    summary = {
        "clips": len(rows), "actors": sorted({c.actor for c in cache.clips}), "faces": faces,
        "key_faces": sum(r["key_faces"] for r in rows),
        "frame_accuracy": sum(r["frame_correct"] for r in rows) / faces,
        "key_face_accuracy": sum(r["key_correct"] for r in rows) / sum(r["key_faces"] for r in rows),
        **{f"clip_accuracy_{name}": s.accuracy for name, s in clip_scores.items()},
    }
    print_table(rows, ("take_id", "truth", "faces", "key_faces", "frame_correct", *VOTES),
                title=f"face CNN on {cache.directory.name}: {len(rows)} clips of actor(s) {summary['actors']}")
    print(f"frame accuracy {summary['frame_accuracy']:.3f} ({faces} faces), key-face accuracy "
          f"{summary['key_face_accuracy']:.3f}; clip accuracy: "
          + ", ".join(f"{name} {s.accuracy:.3f}" for name, s in clip_scores.items()) + f" ({len(rows)} clips)")
    args.out.mkdir(parents=True, exist_ok=True)
    save_confusion_png(clip_scores["key_majority"].confusion, labels, args.out / "confusion_ravdess_clips.png",
                       title=f"face CNN, RAVDESS clips (majority of key faces, {len(rows)} clips)")
    save_json(args.out / "results_ravdess.json", {
        "benchmark": "face-ravdess", "command": " ".join(sys.argv), "model": str(args.model),
        "cache": str(cache.directory), "cache_params_hash": cache.manifest["params_hash"], "labels": labels,
        "label_mapping": "RAVDESS labels through edge.taxonomy.to_emotion7 (calm -> neutral)",
        "summary": summary, "clip_scores": {name: s.to_dict() for name, s in clip_scores.items()}, "clips": rows,
    })
    print(f"results_ravdess.json and confusion_ravdess_clips.png in {args.out}")
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, metavar="FILE",
                        help=f"face model saved by `emotion-train face` (default {DEFAULT_MODEL})")
    parser.add_argument("--out", type=Path, default=Path("runs/face_fer/bench"), metavar="DIR",
                        help="output folder (default runs/face_fer/bench)")
    parser.add_argument("--threads", type=int, default=1, metavar="N", help="torch CPU threads (default 1)")


def add_face_commands(subparsers: Any) -> None:
    """``emotion-bench face-fer`` and ``emotion-bench face-ravdess``."""
    fer = subparsers.add_parser(
        "face-fer", help="accuracy and macro-F1 of the face CNN on a FER2013-style test folder",
        description="Score the face CNN on every image of a class-folder test set (FER2013 test: 7,178 "
                    "images): accuracy, macro-F1, per-class precision/recall/F1; writes results_fer.json "
                    "and confusion_fer.png to --out.")
    _common(fer)
    fer.add_argument("--data", type=Path, required=True, metavar="DIR",
                     help="test folder with one sub-folder per class, e.g. ../shared/data/fer2013/test")
    fer.set_defaults(run=_fer)
    ravdess = subparsers.add_parser(
        "face-ravdess", help="frame and clip accuracy of the face CNN on an audio-visual RAVDESS cache",
        description="Score the face CNN on the aligned faces of an AV cache (`emotion-train cache av`): frame "
                    "accuracy and clip accuracy by majority vote / mean posterior over key faces and over "
                    "all faces; RAVDESS calm counts as neutral. Writes results_ravdess.json to --out.")
    _common(ravdess)
    ravdess.add_argument("--cache", type=Path, required=True, metavar="DIR", help="AV feature cache folder")
    ravdess.set_defaults(run=_ravdess)


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="python -m train.face_benchmark")
    add_face_commands(_parser.add_subparsers(dest="command", required=True))
    _args = _parser.parse_args()
    sys.exit(_args.run(_args))
