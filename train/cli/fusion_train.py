"""``emotion-train fusion``: train the model-level fusion head."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from train.checkpoints import CONFIG_FILE
from train.data.feature_cache import load_speech_cache
from train.fusion.data import embed_rows, load_face_encoder, load_speech_encoder, plan_pairs
from train.fusion.eval import daemon_weights, method_posteriors, metric_row, score_methods
from train.fusion.training import (
    MODEL_FILE,
    HeadSettings,
    _check_cache,
    _pair_tensors,
    fer_split,
    model_summary,
    save_fusion_head,
    train_head,
)
from train.networks.face_cnn import pixels
from train.trainer import TrainConfig, predict


def add_head_options(parser: argparse.ArgumentParser) -> None:
    """Options of a fusion-head training run (shared by ``emotion-train fusion`` and ``emotion-bench fusion-cv``)."""
    parser.add_argument("--epochs", type=int, default=30, help="default 30")
    parser.add_argument("--batch-size", type=int, default=256, help="default 256")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--weight-decay", type=float, default=1e-4,
                        help="decoupled weight decay, AdamW (default 1e-4)")
    parser.add_argument("--dropout", type=float, default=0.3, help="dropout on the concatenated embeddings "
                                                                  "(default 0.3)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the pairs, weights and batches (default 0)")
    parser.add_argument("--threads", type=int, default=1, metavar="N", help="torch CPU threads (default 1)")


def head_settings(args: argparse.Namespace) -> HeadSettings:
    """Settings from parsed ``add_head_options``; also sets torch's thread count."""
    torch.set_num_threads(args.threads)
    return HeadSettings(config=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                           seed=args.seed, weight_decay=args.weight_decay),
                        dropout=args.dropout)


def _train(args: argparse.Namespace) -> int:
    settings = head_settings(args)
    speech, face = load_speech_encoder(args.speech_model), load_face_encoder(args.face_model)
    cache = load_speech_cache(args.speech_cache)
    _check_cache(speech, cache.manifest["params_hash"], cache.directory)
    faces = fer_split(args.fer, face)
    training = speech.meta["training"]
    seed = settings.config.seed
    train_pairs = plan_pairs(cache, training["fit_actors"], faces.fit_labels, "fit", args.faces_per_window, seed)
    val_pairs = plan_pairs(cache, training["validation_actors"], faces.val_labels, "validation",
                           args.faces_per_window, seed + 1)
    windows = np.concatenate([train_pairs.windows, val_pairs.windows])
    speech_embedding, speech_posterior = embed_rows(speech, cache.windows, windows, torch.from_numpy,
                                                    "speech embeddings")
    fit_embedding, fit_posterior = embed_rows(face, faces.fit_images, train_pairs.faces, pixels,
                                              "face embeddings (fit)")
    val_embedding, val_posterior = embed_rows(face, faces.val_images, val_pairs.faces, pixels,
                                              "face embeddings (validation)")
    train_xy = _pair_tensors(train_pairs, speech_embedding, fit_embedding)
    val_xy = _pair_tensors(val_pairs, speech_embedding, val_embedding)
    args.out.mkdir(parents=True, exist_ok=True)
    trained = train_head(train_xy, val_xy, speech.embedding_size, settings,
                         checkpoint=args.out / "training_checkpoint.pt", log_path=args.out / "train_log.jsonl")
    posteriors = method_posteriors(speech_posterior[val_pairs.windows], val_posterior[val_pairs.faces],
                                   predict(trained.head, val_xy[0]), daemon_weights())
    validation = {method: metric_row(s)["window_accuracy"]
                  for method, s in score_methods(posteriors, val_pairs.labels).items()}
    path = save_fusion_head(args.out, trained, {"speech": speech, "face": face}, {
        "pairs": "class-matched: RAVDESS speech windows x FER2013 faces of the same 7-class emotion "
                 "(calm pairs with neutral)",
        "speech_cache": str(cache.directory.resolve()), "speech_cache_params_hash": cache.manifest["params_hash"],
        "fer": str(faces.root.resolve()), "fer_split": {"validation_fraction": face.meta["training"]
                                                        ["validation_fraction"],
                                                        "seed": face.meta["training"]["train_config"]["seed"]},
        "faces_per_window": args.faces_per_window, "train_pairs": train_pairs.describe(),
        "validation_pairs": val_pairs.describe(), **settings.to_dict(),
        "validation_accuracy": validation, "decision_weights": daemon_weights()})
    summary = model_summary(trained.head)
    print(f"{path}: {summary['weight_layers']} weight layer, {summary['parameters']} parameters; "
          f"{len(train_pairs)} training pairs (actors {list(train_pairs.actors)} x FER fit), best epoch "
          f"{trained.fit.best_epoch} of {len(trained.fit.history)} ({trained.seconds:.0f} s)")
    print(f"validation pairs ({len(val_pairs)}: actors {list(val_pairs.actors)} x FER validation), window "
          "accuracy: " + ", ".join(f"{method} {acc:.4f}" for method, acc in validation.items()))
    return 0


def add_fusion_command(subparsers: Any) -> argparse.ArgumentParser:
    """``emotion-train fusion``: train the model-level fusion head on class-matched pairs."""
    parser = subparsers.add_parser(
        "fusion", help="train the model-level fusion head (speech + face embeddings -> 7 emotions)",
        description="Train the fusion head (concatenated speech and face embeddings -> dropout -> fc) on "
                    "class-matched pairs: windows of the speech model's fitting actors x FER2013 faces of the "
                    "face model's fitting split with the same 7-class emotion (calm with neutral). The best "
                    "epoch is chosen on the speech model's validation actors x FER2013's validation split. "
                    f"Writes {MODEL_FILE} and {CONFIG_FILE} to --out; resumes an interrupted run.")
    parser.add_argument("--speech-model", type=Path, required=True, metavar="FILE",
                        help="speech model (speech_cnn.pt of `emotion-train speech`, or a fold checkpoint "
                             "<speech_cv>/fold<k>/checkpoint.pt of `emotion-bench speech`)")
    parser.add_argument("--face-model", type=Path, required=True, metavar="FILE",
                        help="face model (face_cnn.pt of `emotion-train face`)")
    parser.add_argument("--speech-cache", type=Path, required=True, metavar="DIR",
                        help="the speech feature cache the speech model was trained on")
    parser.add_argument("--fer", type=Path, required=True, metavar="DIR",
                        help="FER2013 folder holding train/ (or that train/ folder): the face model's split is "
                             "recomputed from the fraction and seed it recorded")
    parser.add_argument("--faces-per-window", type=int, default=10, metavar="K",
                        help="faces of its class drawn for every speech window (default 10)")
    add_head_options(parser)
    parser.add_argument("--out", type=Path, default=Path("runs/fusion_final"), metavar="DIR",
                        help="output folder (default runs/fusion_final)")
    parser.set_defaults(run=_train)
    return parser
