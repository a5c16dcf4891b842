"""Tiny untrained torch encoders saved the way ``emotion-train speech`` / ``face`` save theirs, for fusion tests.

The metadata carries what the fusion code reads: labels, architecture, feature settings, and the
actors (speech) or FER2013 split (face) the model was "trained" on, so a test decides which actors
a speech model has heard; and what ``emotion-export onnx`` reads (input shape, layer counts).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from edge.features.alignment import AlignParams
from edge.features.mfcc import MfccParams
from edge.features.vad import VadParams
from edge.taxonomy import EMOTIONS, RAVDESS_LABELS
from train.checkpoints import save_model
from train.networks.face_cnn import FaceCNN
from train.networks.layers import count_weight_layers
from train.networks.speech_cnn import SpeechCNN


def _summary(model: torch.nn.Module) -> dict[str, int]:
    return {"weight_layers": count_weight_layers(model), "parameters": sum(p.numel() for p in model.parameters())}


def speech_encoder(path: Path, fit_actors: Sequence[int], validation_actors: Sequence[int],
                   cache_params_hash: str = "unknown", seed: int = 0) -> Path:
    """A SpeechCNN (2 conv blocks, 16-d embedding) saved as ``path`` with speech-model metadata."""
    torch.manual_seed(seed)
    model = SpeechCNN(channels=(8, 16), embedding=16, dropout=0.1).eval()
    mfcc = MfccParams()
    meta: dict[str, Any] = {
        "model": "SpeechCNN", "model_config": model.config(), "labels": list(RAVDESS_LABELS),
        "input": {"shape": ["batch", 1 + mfcc.delta_order, mfcc.frames_per_window, mfcc.numcep],
                  "layout": "channels x frames x MFCC coefficients", "normalisation": "inside the model"},
        **_summary(model),
        "features": {"mfcc": MfccParams().to_dict(), "vad": VadParams().to_dict()},
        "training": {"fit_actors": list(fit_actors), "validation_actors": list(validation_actors),
                     "cache_params_hash": cache_params_hash},
    }
    return save_model(path.parent, path.name, model, meta)


def face_encoder(path: Path, data: Path, fit_images: int, validation_images: int,
                 validation_fraction: float = 0.25, seed: int = 0) -> Path:
    """A FaceCNN (width 8, 32-d embedding) saved as ``path`` with face-model metadata (its FER split)."""
    torch.manual_seed(seed)
    model = FaceCNN(width=8, fc_units=32).eval()
    size = model.config()["crop_size"]
    meta: dict[str, Any] = {
        "model": "FaceCNN", "model_config": model.config(), "labels": list(EMOTIONS),
        "input": {"shape": ["batch", 1, size, size], "layout": "aligned gray face crop, float32 pixels 0..255",
                  "normalisation": "inside the model"},
        **_summary(model),
        "features": {"align": AlignParams().to_dict()},
        "training": {"data": str(data), "fit_images": fit_images, "validation_images": validation_images,
                     "validation_fraction": validation_fraction, "train_config": {"seed": 0}},
    }
    return save_model(path.parent, path.name, model, meta)
