"""Training the face CNN on FER2013: batch augmentation, the fc-weight penalty, lambda selection, the final model.

Validation (checkpoint selection, lambda choice) always comes from a seeded, stratified part of
FER2013 *train* (``validation_split``); the test set is only read by the benchmark. Training runs
in two stages on the same split: Adam at ``lr`` (constant, or the trainer's one-cycle schedule), then
``finetune_epochs`` more from the best weights at ``lr * finetune_factor`` (a step decay built from
two resumable ``fit`` calls). Class imbalance (disgust has 436 of 28,709 images) is handled by the
trainer's inverse-frequency class weights.

``emotion-train face`` trains and saves ``face_cnn.pt`` + ``config.json``; ``emotion-train
face-lambda`` compares penalty weights on the validation split (both in ``train.cli.face_train``).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from torch import nn

from edge.errors import InputError
from edge.features.alignment import AlignParams
from edge.taxonomy import EMOTIONS
from train import distributed
from train.checkpoints import load_model, save_model
from train.data.ferplus import FERPLUS_RULE, load_ferplus
from train.data.image_folder import index_image_folder, load_images
from train.networks.face_cnn import FaceCNN, pixels
from train.networks.layers import count_weight_layers
from train.trainer import (
    FitResult,
    TrainConfig,
    fit,
    predict,
    seed_everything,
)

MODEL_FILE = "face_cnn.pt"


@dataclass(frozen=True)
class FaceAugment:
    """What a deployed camera does to an aligned crop that FER2013 does not, applied to a pixel batch.

    In this order, each with its own random draw per image:

    - geometry (one bilinear resampling, border padding): horizontal flip, rotation in
      +-``rotation`` degrees, scale in 1 +- ``scale``, shift in +-``shift`` of the side per axis
      (the framing jitter of YuNet boxes + 5-point alignment);
    - gamma in [1/``gamma``, ``gamma``] (log-uniform), then ``(x - mean) * c + mean + b`` with
      contrast c in 1 +- ``contrast`` and brightness b in +-``brightness`` grey levels (low light,
      over-exposure, flat sensors);
    - Gaussian blur of sigma in [0, ``blur_sigma``] pixels with probability ``blur_p`` (focus,
      motion, a small face upscaled);
    - Gaussian sensor noise of standard deviation in [0, ``noise``] grey levels;
    - random erasing with probability ``erase_p``: one rectangle of 4-25 % of the crop filled with a
      random grey level (hands, glasses, a microphone);

    then clipping to 0..255. A magnitude of 0 switches its step off.
    """

    flip: bool = True
    rotation: float = 10.0
    scale: float = 0.1
    shift: float = 0.1
    brightness: float = 25.0
    contrast: float = 0.25
    gamma: float = 1.0
    blur_p: float = 0.0
    blur_sigma: float = 1.5
    noise: float = 0.0
    erase_p: float = 0.0

    @classmethod
    def camera(cls) -> FaceAugment:
        """The shipped recipe's augmentation: wider framing jitter and every photometric step on."""
        return cls(rotation=15.0, scale=0.15, shift=0.08, brightness=20.0, contrast=0.3, gamma=1.4,
                   blur_p=0.3, blur_sigma=1.2, noise=6.0, erase_p=0.25)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = len(x)

        def uniform(half_width: float) -> torch.Tensor:
            return (2 * torch.rand(n, generator=generator) - 1) * half_width

        def per_image(values: torch.Tensor) -> torch.Tensor:
            return values.view(n, 1, 1, 1).to(x.device)

        angle = uniform(math.radians(self.rotation))
        zoom = 1 + uniform(self.scale)
        mirror = torch.ones(n)
        if self.flip:
            mirror = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        # affine_grid maps output to input coordinates in [-1, 1]: a shift of f of the side is 2f.
        theta = torch.stack([
            torch.stack([cos * mirror, -sin, 2 * uniform(self.shift)], dim=1),
            torch.stack([sin * mirror, cos, 2 * uniform(self.shift)], dim=1),
        ], dim=1).to(x.device)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        out = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
        if self.gamma > 1:
            gamma = torch.exp(uniform(math.log(self.gamma)))
            out = 255.0 * (out.clamp(0, 255) / 255.0) ** per_image(gamma)
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        out = (out - mean) * per_image(1 + uniform(self.contrast)) + mean + per_image(uniform(self.brightness))
        if self.blur_p > 0 and self.blur_sigma > 0:
            sigma = torch.rand(n, generator=generator) * self.blur_sigma
            sigma = torch.where(torch.rand(n, generator=generator) < self.blur_p, sigma, torch.zeros(n))
            out = _gaussian_blur(out, sigma.to(x.device))
        if self.noise > 0:
            std = per_image(torch.rand(n, generator=generator) * self.noise)
            out = out + std * torch.randn(out.shape, generator=generator).to(x.device)
        if self.erase_p > 0:
            out = _erase(out, self.erase_p, generator)
        return out.clamp(0, 255)


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, radius: int = 3) -> torch.Tensor:
    """Separable Gaussian blur of each image with its own sigma (sigma 0: unchanged), reflect padding."""
    n, _, h, w = x.shape
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (taps / sigma.clamp(min=1e-3).unsqueeze(1)) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)                 # (n, 2r+1); sigma ~0 -> a delta
    images = F.pad(x.reshape(1, n, h, w), (radius, radius, radius, radius), mode="reflect")
    images = F.conv2d(images, kernel.view(n, 1, 1, -1), groups=n)
    images = F.conv2d(images, kernel.view(n, 1, -1, 1), groups=n)
    return images.view(n, 1, h, w)


def _erase(x: torch.Tensor, probability: float, generator: torch.Generator) -> torch.Tensor:
    """Random erasing: with ``probability``, one rectangle of 4-25 % of the area set to a random grey."""
    n, _, h, w = x.shape
    area = 0.04 + 0.21 * torch.rand(n, generator=generator)
    aspect = torch.exp((2 * torch.rand(n, generator=generator) - 1) * math.log(2.0))
    eh = (torch.sqrt(area * aspect) * h).clamp(1, h).long()
    ew = (torch.sqrt(area / aspect) * w).clamp(1, w).long()
    top = (torch.rand(n, generator=generator) * (h - eh + 1)).long()
    left = (torch.rand(n, generator=generator) * (w - ew + 1)).long()
    rows, cols = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    inside = ((rows >= top.view(n, 1, 1)) & (rows < (top + eh).view(n, 1, 1))
              & (cols >= left.view(n, 1, 1)) & (cols < (left + ew).view(n, 1, 1)))
    chosen = torch.rand(n, generator=generator) < probability
    mask = (inside & chosen.view(n, 1, 1)).unsqueeze(1).to(x.device)
    fill = (255 * torch.rand(n, generator=generator)).view(n, 1, 1, 1).to(x.device, x.dtype)
    return torch.where(mask, fill, x)


@dataclass(frozen=True)
class FcPenalty:
    """The trainer's penalty: ``weight`` * ||w||^2 of the face CNN's two fc layers (seed equation 1)."""

    weight: float

    def __call__(self, model: nn.Module) -> torch.Tensor:
        if not isinstance(model, FaceCNN):
            raise TypeError(f"the fc penalty needs a FaceCNN, got {type(model).__name__}")
        return self.weight * model.fc_penalty()


@dataclass
class FaceData:
    """Fitting and validation images (gray uint8 crops) with their targets.

    ``fit_labels`` are label ids, or soft targets (n, 7) for FER+; ``val_labels`` are label ids
    (FER+: the majority label). ``source`` says where they come from.
    """

    fit_images: np.ndarray
    fit_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    root: Path
    source: str = "FER2013 folder labels, validation = a stratified part of train/"


def load_image_set(root: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """All images of a class-folder set as (N, 48, 48) uint8 and their ``EMOTIONS`` label ids."""
    index = index_image_folder(root, EMOTIONS)
    if not index.paths:
        raise InputError(f"{root}: no images in its class folders")
    loaded = load_images(index, size=48)
    return loaded.images, loaded.label_ids


def validation_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit indices, validation indices): a seeded split holding out ``fraction`` of every class."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    fit_idx, val_idx = train_test_split(np.arange(len(labels)), test_size=fraction, random_state=seed,
                                        stratify=labels)
    return np.sort(fit_idx), np.sort(val_idx)


def load_face_data(root: str | Path, val_fraction: float, seed: int) -> FaceData:
    """FER2013 ``root`` (its ``train/`` folder) split by ``validation_split``."""
    images, labels = load_image_set(root)
    fit_idx, val_idx = validation_split(labels, val_fraction, seed)
    return FaceData(images[fit_idx], labels[fit_idx], images[val_idx], labels[val_idx], Path(root))


def load_ferplus_data(root: str | Path) -> FaceData:
    """FER+ vote distributions of FER2013 Training, validated on the PublicTest majority labels."""
    sets = load_ferplus(root, splits=("train", "validation"))
    train, val = sets["train"], sets["validation"]
    return FaceData(train.images, train.targets, val.images, val.majority, Path(root),
                    source=f"FER+ soft targets ({FERPLUS_RULE}); fit = FER2013 Training ({train.left_out} left "
                           f"out), validation = PublicTest majority ({val.left_out} left out)")


def subset(images: np.ndarray, labels: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded stratified subset of ``count`` images (all of them when ``count`` >= their number)."""
    if count >= len(labels):
        return images, labels
    keep, _ = train_test_split(np.arange(len(labels)), train_size=count, random_state=seed, stratify=labels)
    keep = np.sort(keep)
    return images[keep], labels[keep]


@dataclass(frozen=True)
class FaceRecipe:
    """Everything that decides a training run besides the data."""

    model_config: dict[str, Any]
    config: TrainConfig
    penalty: float
    augment: FaceAugment | None
    finetune_epochs: int = 0
    finetune_factor: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return {"model_config": self.model_config, "train_config": self.config.to_dict(),
                "penalty_lambda": self.penalty, "augment": self.augment.to_dict() if self.augment else None,
                "finetune_epochs": self.finetune_epochs, "finetune_factor": self.finetune_factor}


@dataclass
class TrainedFaceModel:
    """The model with its best validation weights, the fit of each stage and the time taken.

    ``epochs_now`` counts the epochs this call ran (a resumed run skips those in its checkpoints);
    ``epoch_seconds`` is their mean time, None when every epoch came from checkpoints.
    """

    model: FaceCNN
    stages: list[FitResult]
    val_accuracy: float
    seconds: float
    epochs_now: int
    epoch_seconds: float | None


def _epochs_done(checkpoint: Path | None) -> int:
    """Epochs already trained according to a trainer checkpoint (0 when there is none)."""
    if checkpoint is None or not checkpoint.is_file():
        return 0
    return int(torch.load(checkpoint, weights_only=False)["epoch"]) + 1


def train_face_model(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
                     recipe: FaceRecipe, out: Path | None = None, description: str = "face") -> TrainedFaceModel:
    """Train a ``FaceCNN`` (stage 1 at ``lr``, then the fine-tune stage); resumable from ``out``."""
    started = time.monotonic()
    seed_everything(recipe.config.seed)
    # channels-last convolutions train about 1.3x faster on CPU
    model = FaceCNN(**recipe.model_config).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    x_train, y_train = pixels(train[0]), torch.from_numpy(train[1])
    x_val, y_val = pixels(val[0]), torch.from_numpy(val[1])
    stages = [(recipe.config, "stage1")]
    if recipe.finetune_epochs:
        # a new seed: the same one would replay stage 1's first epoch (batches, augmentation, dropout)
        stages.append((replace(recipe.config, epochs=recipe.finetune_epochs, seed=recipe.config.seed + 1,
                               lr=recipe.config.lr * recipe.finetune_factor), "finetune"))
    results = []
    epochs_now, fit_seconds = 0, 0.0
    for config, stage in stages:
        checkpoint = out / f"checkpoint_{stage}.pt" if out else None
        done, fit_started = _epochs_done(checkpoint), time.monotonic()
        results.append(fit(model, (x_train, y_train), (x_val, y_val), len(EMOTIONS), config,
                           augment=recipe.augment, penalty=FcPenalty(recipe.penalty), checkpoint=checkpoint,
                           log_path=out / "train_log.jsonl" if out else None,
                           description=f"{description} {stage}"))
        epochs_now += len(results[-1].history) - done
        fit_seconds += time.monotonic() - fit_started
    val_accuracy = float((predict(model, x_val).argmax(1) == val[1]).mean())
    return TrainedFaceModel(model=model.to(memory_format=torch.contiguous_format), stages=results,
                            val_accuracy=val_accuracy, seconds=time.monotonic() - started, epochs_now=epochs_now,
                            epoch_seconds=fit_seconds / epochs_now if epochs_now else None)


def model_summary(model: FaceCNN) -> dict[str, int]:
    """Weight layers on the classification path and in the spatial transformer, and parameters."""
    return {"weight_layers": count_weight_layers(model, exclude=[model.localisation]),
            "stn_weight_layers": count_weight_layers(model.localisation),
            "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "stn_parameters": sum(p.numel() for p in model.localisation.parameters())}


def save_face_model(directory: Path, trained: TrainedFaceModel, data: FaceData, recipe: FaceRecipe,
                    val_fraction: float | None) -> Path:
    """Write ``face_cnn.pt`` (weights + metadata) and the metadata alone as ``config.json``."""
    model = trained.model
    config = model.config()
    meta = {
        "model": type(model).__name__,
        "model_config": config,
        "labels": config["labels"],
        "input": {"shape": ["batch", 1, config["crop_size"], config["crop_size"]],
                  "layout": "aligned gray face crop, float32 pixels 0..255",
                  "normalisation": f"inside the model: (x / 255 - {config['pixel_mean']}) / {config['pixel_std']}"},
        "features": {"align": AlignParams(crop_size=config["crop_size"]).to_dict()},
        "training": {
            "data": str(data.root.resolve()), "labels_source": data.source, "fit_images": len(data.fit_labels),
            "validation_images": len(data.val_labels), "validation_fraction": val_fraction,
            **recipe.to_dict(),
            "stages": [{"best_epoch": r.best_epoch, "epochs_run": len(r.history),
                        "best_val_accuracy": r.best_val_accuracy} for r in trained.stages],
            "val_accuracy": trained.val_accuracy, "seconds_last_invocation": round(trained.seconds, 1),
            "epochs_last_invocation": trained.epochs_now, "seconds_per_epoch": trained.epoch_seconds,
            "processes": distributed.world_size(),
        },
        **model_summary(model),
    }
    return save_model(directory, MODEL_FILE, model, meta)


def load_face_model(path: str | Path) -> tuple[FaceCNN, dict[str, Any]]:
    """The model (eval mode) and metadata saved by ``save_face_model``."""
    return load_model(path, FaceCNN, "face")












