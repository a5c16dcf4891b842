"""Training the model-level fusion head on class-matched pairs: ``emotion-train fusion``.

Only one RAVDESS actor has video here, so the head learns from class-matched pairs
(``train.fusion.data``): RAVDESS speech windows of the speech model's *fitting* actors, each with
``faces_per_window`` FER2013 faces of the same 7-class emotion from the face model's *fitting*
split. The best epoch is chosen on pairs of held-out data only: the speech model's validation
actors (recorded in its metadata) with faces of FER2013's validation split (the face model's own
split, recomputed from the fraction and seed it recorded). Embeddings come from the frozen
encoders in eval mode; pairs are drawn once, seeded. Training uses the shared ``fit`` (seeded,
class-weighted, checkpointed so that a rerun resumes, logged).

``save_fusion_head`` writes ``fusion_head.pt`` + ``config.json`` (``train.checkpoints.save_model``)
recording the encoders (paths, SHA-256, embedding sizes), the data and the validation accuracy
of the head beside speech only, face only and decision fusion on the same pairs;
``load_fusion_head`` reads it back. ``HeadSettings`` are shared with the audio-visual
cross-validation (``train.fusion.cv``), which trains heads on real aligned pairs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from edge.errors import InputError
from edge.taxonomy import EMOTIONS
from train.checkpoints import load_model, save_model
from train.face.training import FaceData, load_face_data
from train.fusion.data import Encoder, PairSet
from train.networks.fusion_head import FusionHead
from train.networks.layers import count_weight_layers
from train.trainer import FitResult, TrainConfig, fit, seed_everything

MODEL_FILE = "fusion_head.pt"


@dataclass(frozen=True)
class HeadSettings:
    """Optimiser settings and the head's dropout."""

    config: TrainConfig
    dropout: float

    def to_dict(self) -> dict[str, Any]:
        return {"train_config": self.config.to_dict(), "dropout": self.dropout}






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




