"""Training the speech CNN: SpecAugment masks, actor-held-out validation, fold models, the final model.

Validation for early stopping and checkpoint selection always comes from the training actors:
``validation_split`` holds out one male and one female training actor, so no test speaker ever
steers training. ``train_speech_model`` trains one model on the windows of a set of actors (one
CV fold, or all 24 for the final model); ``save_speech_model`` writes the weights with
everything the export step needs (architecture, labels, MFCC/VAD settings, training record) and
``load_speech_model`` reads them back. ``emotion-train speech`` (``train.cli.speech_train``)
trains and saves the final model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edge.errors import InputError
from edge.taxonomy import RAVDESS_LABELS
from train import distributed
from train.checkpoints import load_model, save_model
from train.data.feature_cache import SpeechCache
from train.metrics import clip_votes, score
from train.networks.layers import count_weight_layers
from train.networks.speech_cnn import SpeechCNN
from train.trainer import (
    Augment,
    FitResult,
    TrainConfig,
    fit,
    predict,
    seed_everything,
)

MODEL_FILE = "speech_cnn.pt"
# The shipped recipe, the command-line defaults: on CV folds 0 and 2 these four wider blocks (40
# epochs) beat (16, 32, 64, 128) at 30 epochs by 3.5 points of clip accuracy (see the model card).
SHIPPED_CHANNELS = (32, 64, 128, 256)
SHIPPED_EPOCHS = 40


@dataclass(frozen=True)
class SpecAugment:
    """SpecAugment: random time bands (frames) and frequency bands (mel bands) masked out.

    Each window gets ``time_masks`` bands of 0..``max_time`` frames and ``freq_masks`` bands of
    0..``max_freq`` mel bands (the same bands in all three channels). Masking happens on the
    model's log mel image, with the training mean as the fill (zero after standardisation);
    the window is then turned back into MFCCs, the input the model takes.
    """

    time_masks: int = 2
    max_time: int = 12
    freq_masks: int = 2
    max_freq: int = 5

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def mask(self, image: torch.Tensor, fill: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``image`` (n, channels, frames, bands) with random bands replaced by ``fill`` ([n,] channels, 1, bands)."""
        n, _, frames, bands = image.shape
        time = _bands(n, frames, self.time_masks, self.max_time, generator)
        freq = _bands(n, bands, self.freq_masks, self.max_freq, generator)
        masked = (time[:, None, :, None] | freq[:, None, None, :]).to(image.device)
        return torch.where(masked, fill.to(image.dtype), image)

    def augment(self, model: SpeechCNN) -> Augment:
        """The trainer's augmentation function for ``model``'s MFCC inputs."""

        def apply(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            with torch.no_grad():
                image = model.to_log_mel(x)
                # the fill is what standardisation maps to zero: the training mean, or with time
                # normalisation the window's own mean over its frames (for every channel)
                fill = image.mean(dim=2, keepdim=True) if model.time_norm else model.standardise.mean
                return model.to_log_mel.inverse(self.mask(image, fill, generator))

        return apply


def _bands(n: int, length: int, count: int, max_width: int, generator: torch.Generator) -> torch.Tensor:
    """(n, length) bool: ``count`` random bands per row, each 0..max_width wide."""
    positions = torch.arange(length)
    mask = torch.zeros(n, length, dtype=torch.bool)
    for _ in range(count):
        width = torch.randint(0, max_width + 1, (n, 1), generator=generator)
        start = (torch.rand(n, 1, generator=generator) * (length - width + 1)).long()
        mask |= (positions >= start) & (positions < start + width)
    return mask


def validation_split(actors: Sequence[int], seed: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(fit actors, validation actors): one male (odd) and one female (even) actor held out, seeded."""
    rng = np.random.default_rng(seed)
    males = sorted(a for a in actors if a % 2)
    females = sorted(a for a in actors if a % 2 == 0)
    if len(males) < 2 or len(females) < 2:
        raise InputError(f"actors {sorted(actors)}: need at least two male and two female actors to hold "
                         "one of each out for validation")
    held_out = (int(rng.choice(males)), int(rng.choice(females)))
    return tuple(a for a in sorted(actors) if a not in held_out), held_out


@dataclass
class WindowSet:
    """The windows of some actors: inputs, labels and the take (clip) id of each window."""

    x: torch.Tensor
    y: torch.Tensor
    take_ids: np.ndarray

    def clip_labels(self) -> dict[str, int]:
        return {str(take): int(label) for take, label in zip(self.take_ids, self.y.tolist(), strict=True)}


def windows_of(cache: SpeechCache, actors: Sequence[int], augmented: bool = False) -> WindowSet:
    """All windows of the takes of ``actors`` (with ``augmented``, their degraded copies' too);
    ``InputError`` when the cache has none of them."""
    selected = np.isin(cache.window_actors, list(actors))
    if not selected.any():
        raise InputError(f"{cache.directory}: no windows of actors {sorted(actors)}")
    x, take = cache.windows[selected], cache.window_take[selected]
    if augmented and len(cache.augmented):
        copies = np.isin(cache.actors[cache.augmented_take], list(actors))
        x = np.concatenate([x, cache.augmented[copies]])
        take = np.concatenate([take, cache.augmented_take[copies]])
    return WindowSet(x=torch.from_numpy(x), y=torch.from_numpy(cache.label_ids[take]),
                     take_ids=np.asarray(cache.take_ids)[take])


def clip_accuracy(posteriors: np.ndarray, windows: WindowSet, rule: str) -> float:
    """Fraction of clips whose ``rule`` vote over their windows is the clip's label."""
    votes = clip_votes(posteriors, windows.take_ids, rule)
    truth = windows.clip_labels()
    return float(np.mean([votes[clip] == truth[clip] for clip in votes]))


@dataclass
class TrainedSpeechModel:
    """A trained model (best validation weights), how it was trained and how long it took."""

    model: SpeechCNN
    fit: FitResult
    fit_actors: tuple[int, ...]
    validation_actors: tuple[int, ...]
    validation: dict[str, float]
    seconds: float


def train_speech_model(cache: SpeechCache, actors: Sequence[int], model_config: dict[str, Any],
                       config: TrainConfig, augment: SpecAugment | None, checkpoint: Path | None = None,
                       log_path: Path | None = None, description: str = "speech") -> TrainedSpeechModel:
    """Train a ``SpeechCNN`` on ``actors`` minus two validation actors, keeping the best validation epoch.

    The model's MFCC front end (mel bands, lifter) follows the cache's MFCC settings.
    Only the ``actors`` the cache holds take part (a partial cache trains on what it has). The
    validation actors come from ``validation_split`` of those, seeded with ``config.seed``; the
    input standardisation is fitted on the fitting actors' windows.
    """
    started = time.monotonic()
    present = sorted(set(actors) & set(cache.actors.tolist()))
    fit_actors, val_actors = validation_split(present, config.seed)
    train, val = windows_of(cache, fit_actors, augmented=True), windows_of(cache, val_actors)
    seed_everything(config.seed)
    n_classes = len(RAVDESS_LABELS)
    mfcc = cache.manifest["params"]["mfcc"]
    model = SpeechCNN(n_classes=n_classes, in_channels=train.x.shape[1], coefficients=train.x.shape[3],
                      mel_bands=mfcc["nfilt"], ceplifter=mfcc["ceplifter"], **model_config)
    model.fit_standardisation(train.x)
    # channels-last convolutions run about 30 % faster on CPU (torch accepts memory_format; its stubs do not)
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    augment_fn = augment.augment(model) if augment is not None else None
    result = fit(model, (train.x, train.y), (val.x, val.y), n_classes, config, augment=augment_fn,
                 checkpoint=checkpoint, log_path=log_path, description=description)
    posteriors = predict(model, val.x)
    validation = {
        "window_accuracy": float(score(val.y.numpy(), posteriors.argmax(1), n_classes).accuracy),
        "clip_accuracy_majority": clip_accuracy(posteriors, val, "majority"),
        "clip_accuracy_mean": clip_accuracy(posteriors, val, "mean"),
    }
    return TrainedSpeechModel(model=model, fit=result, fit_actors=fit_actors, validation_actors=val_actors,
                              validation=validation, seconds=time.monotonic() - started)


def model_summary(model: SpeechCNN) -> dict[str, int]:
    """Weight layers on the classification path and trainable parameters."""
    return {"weight_layers": count_weight_layers(model),
            "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def save_speech_model(directory: Path, trained: TrainedSpeechModel, cache: SpeechCache, config: TrainConfig,
                      augment: SpecAugment | None) -> Path:
    """Write ``speech_cnn.pt`` (weights + metadata) and the metadata alone as ``config.json``."""
    model = trained.model
    meta = {
        **architecture_meta(model, int(cache.windows.shape[2]),
                            {"mfcc": cache.manifest["params"]["mfcc"], "vad": cache.manifest["params"]["vad"]}),
        "training": {
            "data": cache.manifest["data_root"], "cache": cache.directory.name,
            "cache_params_hash": cache.manifest["params_hash"],
            "fit_actors": list(trained.fit_actors), "validation_actors": list(trained.validation_actors),
            "processes": distributed.world_size(),
            "train_config": config.to_dict(), "augment": augment.to_dict() if augment else None,
            "best_epoch": trained.fit.best_epoch, "epochs_run": len(trained.fit.history),
            "validation": trained.validation, "seconds": round(trained.seconds, 1),
        },
    }
    return save_model(directory, MODEL_FILE, model, meta)


def architecture_meta(model: SpeechCNN, frames: int, features: dict[str, Any]) -> dict[str, Any]:
    """What a speech model's metadata says about the model itself: class, configuration, labels, input,
    feature settings (MFCC and VAD) and size; ``training`` is up to the caller."""
    return {
        "model": type(model).__name__,
        "model_config": model.config(),
        "labels": list(RAVDESS_LABELS),
        "input": {"shape": ["batch", model.config()["in_channels"], frames, model.config()["coefficients"]],
                  "layout": "channels static/delta/delta-delta x frames x MFCC coefficients",
                  "normalisation": "raw MFCC windows of edge.features.mfcc.mfcc_windows; the model maps "
                                   "them to log mel energies and standardises those with the training "
                                   "statistics it holds"},
        "features": features,
        **model_summary(model),
    }


def load_speech_model(path: str | Path) -> tuple[SpeechCNN, dict[str, Any]]:
    """The model (eval mode) and metadata saved by ``save_speech_model``."""
    return load_model(path, SpeechCNN, "speech")


@dataclass(frozen=True)
class TrainingSettings:
    """A training recipe: model arguments, optimiser settings, augmentation (the training options' values)."""

    model_config: dict[str, Any]
    config: TrainConfig
    augment: SpecAugment | None

    def to_dict(self) -> dict[str, Any]:
        return {"model_config": self.model_config, "train_config": self.config.to_dict(),
                "augment": self.augment.to_dict() if self.augment else None}


