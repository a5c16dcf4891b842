"""Training the model-level fusion head on class-matched pairs: ``emotion-train fusion``.

Only one RAVDESS actor has video here, so the head learns from class-matched pairs
(``train.fusion_data``): RAVDESS speech windows of the speech model's *fitting* actors, each with
``faces_per_window`` FER2013 faces of the same 7-class emotion from the face model's *fitting*
split. The best epoch is chosen on pairs of held-out data only: the speech model's validation
actors (recorded in its metadata) with faces of FER2013's validation split (the face model's own
split, recomputed from the fraction and seed it recorded). Embeddings come from the frozen
encoders in eval mode; pairs are drawn once, seeded. Training uses the shared ``fit`` (seeded,
class-weighted, checkpointed so that a rerun resumes, logged).

``save_fusion_head`` writes ``fusion_head.pt`` + ``config.json`` (``train.checkpoints.save_model``)
recording the encoders (paths, SHA-256, embedding sizes), the data and the validation accuracy
of the head beside speech only, face only and decision fusion on the same pairs;
``load_fusion_head`` reads it back. ``add_head_options``/``head_settings`` are shared with the
audio-visual cross-validation (``train.fusion_cv``), which trains heads on real aligned pairs.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edge.errors import InputError
from edge.taxonomy import EMOTIONS
from train.checkpoints import CONFIG_FILE, load_model, save_model
from train.data.feature_cache import load_speech_cache
from train.face_training import FaceData, load_face_data
from train.fusion_data import Encoder, PairSet, embed_rows, load_face_encoder, load_speech_encoder, plan_pairs
from train.fusion_eval import daemon_weights, method_posteriors, metric_row, score_methods
from train.models.face_cnn import pixels
from train.models.fusion_head import FusionHead
from train.models.layers import count_weight_layers
from train.trainer import FitResult, TrainConfig, fit, predict, seed_everything

MODEL_FILE = "fusion_head.pt"


@dataclass(frozen=True)
class HeadSettings:
    """Optimiser settings and the head's dropout."""

    config: TrainConfig
    dropout: float

    def to_dict(self) -> dict[str, Any]:
        return {"train_config": self.config.to_dict(), "dropout": self.dropout}


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


@dataclass
class TrainedHead:
    """The head with its best validation weights, the fit record and the time taken."""

    head: FusionHead
    fit: FitResult
    seconds: float


def train_head(train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor],
               speech_dim: int, settings: HeadSettings, checkpoint: Path | None = None,
               log_path: Path | None = None, description: str = "fusion") -> TrainedHead:
    """Train a ``FusionHead`` on concatenated embeddings (standardised with the training pairs' statistics)."""
    started = time.monotonic()
    seed_everything(settings.config.seed)
    head = FusionHead(speech_dim, train[0].shape[1] - speech_dim, dropout=settings.dropout)
    head.fit_standardisation(train[0])
    result = fit(head, train, val, len(EMOTIONS), settings.config, checkpoint=checkpoint, log_path=log_path,
                 description=description)
    head.eval()
    return TrainedHead(head=head, fit=result, seconds=time.monotonic() - started)


def model_summary(head: FusionHead) -> dict[str, int]:
    return {"weight_layers": count_weight_layers(head),
            "parameters": sum(p.numel() for p in head.parameters() if p.requires_grad)}


def save_fusion_head(directory: Path, trained: TrainedHead, encoders: dict[str, Encoder],
                     training: dict[str, Any]) -> Path:
    """Write ``fusion_head.pt`` (weights + metadata) and the metadata alone as ``config.json``."""
    head = trained.head
    meta = {
        "model": type(head).__name__, "model_config": head.config(), "labels": list(EMOTIONS),
        "input": {"shape": ["batch", head.speech_dim + head.face_dim],
                  "layout": f"[speech embedding ({head.speech_dim}), face embedding ({head.face_dim})] "
                            "concatenated: SpeechCNN.embed and FaceCNN.embed of the encoders below",
                  "normalisation": "inside the model: per-feature standardisation with training-pair statistics"},
        "encoders": {name: encoder.describe() for name, encoder in encoders.items()},
        "training": {**training, "best_epoch": trained.fit.best_epoch, "epochs_run": len(trained.fit.history),
                     "best_val_accuracy": trained.fit.best_val_accuracy, "seconds": round(trained.seconds, 1)},
        **model_summary(head),
    }
    return save_model(directory, MODEL_FILE, head, meta)


def load_fusion_head(path: str | Path) -> tuple[FusionHead, dict[str, Any]]:
    """The head (eval mode) and metadata saved by ``save_fusion_head``."""
    return load_model(path, FusionHead, "fusion")


def fer_split(fer: Path, face: Encoder) -> FaceData:
    """FER2013 train split exactly as the face model was: its recorded validation fraction and seed.

    ``fer`` is the FER2013 folder holding ``train/`` (or that ``train/`` folder). ``InputError``
    when the split sizes differ from the ones the face model recorded (then validation faces
    could be faces the face model was trained on).
    """
    root = fer / "train" if (fer / "train").is_dir() else fer
    training = face.meta["training"]
    data = load_face_data(root, training["validation_fraction"], training["train_config"]["seed"])
    expected = (training["fit_images"], training["validation_images"])
    if (len(data.fit_labels), len(data.val_labels)) != expected:
        raise InputError(f"{root}: split into {len(data.fit_labels)} fitting and {len(data.val_labels)} validation "
                         f"images, but {face.path} was trained on a split of {expected[0]} and {expected[1]} "
                         f"(of {training['data']}): not the same data")
    return data


def _check_cache(speech: Encoder, cache_hash: str, cache: Path) -> None:
    recorded = speech.meta["training"].get("cache_params_hash")
    if recorded != cache_hash:
        raise InputError(f"{cache}: feature parameters (hash {cache_hash}) differ from those {speech.path} was "
                         f"trained on (hash {recorded})")


def _pair_tensors(pairs: PairSet, speech_embedding: torch.Tensor,
                  face_embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.cat([speech_embedding[pairs.windows], face_embedding[pairs.faces]], dim=1)
    return x, torch.from_numpy(pairs.labels)


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
