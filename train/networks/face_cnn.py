"""The face CNN: a spatial transformer in front of a small VGG-style classifier (seed: Deep-Emotion).

Input: (batch, 1, S, S) float32 gray pixels in 0..255 of aligned face crops (S = 48 by default).
The model standardises them itself, ``(x / 255 - pixel_mean) / pixel_std`` with fixed FER2013
statistics held as buffers, so the exported model takes raw pixels. The localisation net (2 conv +
2 fc) regresses a 2x3 affine that resamples the crop (its last fc starts at the identity). The
classification path is 3 blocks of 2 conv layers (BatchNorm + ReLU) each ending in 2x2 max-pooling,
then 2 fc layers with dropout: 6 conv + 2 fc = 8 weight layers, logits in ``labels`` order.
``embed`` returns the input of the last fc (for fusion); ``fc_penalty`` is ||w||^2 of the two fc
layers (seed equation 1 multiplies it by lambda).

Output calibration is part of the graph, so the device applies exactly what was fitted:
``logits = (fc2(embedding) + logit_bias) / temperature``. Both come from the constructor (and so
travel in ``config()`` and the sidecar); they are 0 and 1 while training and are set afterwards
with ``calibrate`` (``train.confidence``: a prior correction and a temperature fitted on
validation data).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edge.taxonomy import EMOTIONS
from train.networks.layers import Standardise, conv_block

# Mean and standard deviation of the FER2013 train pixels after x / 255 (28,709 images).
PIXEL_MEAN = 0.5077
PIXEL_STD = 0.2551


def pixels(crops: np.ndarray) -> torch.Tensor:
    """Gray uint8 crops (N, S, S) -> the model's float32 input (N, 1, S, S), still 0..255."""
    crops = np.asarray(crops)
    if crops.ndim != 3:
        raise ValueError(f"need gray crops shaped (N, S, S), got shape {crops.shape}")
    return torch.from_numpy(crops.astype(np.float32)).unsqueeze(1)


def base_grid(side: int) -> torch.Tensor:
    """(side * side, 3) rows (x, y, 1) of the pixel centres in [-1, 1], row-major (align_corners=False)."""
    centres = (2 * torch.arange(side, dtype=torch.float32) + 1) / side - 1
    y, x = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack([x.flatten(), y.flatten(), torch.ones(side * side)], dim=1)


class Localisation(nn.Module):
    """The spatial transformer's localisation net: 2 conv + 2 fc regressing a 2x3 affine.

    The last fc has zero weights and the identity as bias, so training starts from no transform.
    """

    def __init__(self, crop_size: int, channels: tuple[int, int] = (8, 10), hidden: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels[0], kernel_size=7), nn.MaxPool2d(2), nn.ReLU(inplace=True),
            nn.Conv2d(channels[0], channels[1], kernel_size=5), nn.MaxPool2d(2), nn.ReLU(inplace=True),
        )
        side = ((crop_size - 6) // 2 - 4) // 2
        self.fc1 = nn.Linear(channels[1] * side * side, hidden)
        self.fc2 = nn.Linear(hidden, 6)
        nn.init.zeros_(self.fc2.weight)
        with torch.no_grad():
            self.fc2.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = F.relu(self.fc1(self.features(x).flatten(1)))
        return self.fc2(hidden).view(-1, 2, 3)


class FaceCNN(nn.Module):
    """Spatial transformer + 3 pooled blocks of 2 conv + 2 fc; see the module docstring."""

    def __init__(self, labels: Sequence[str] = EMOTIONS, crop_size: int = 48, width: int = 16,
                 fc_units: int = 256, dropout: float = 0.5, pixel_mean: float = PIXEL_MEAN,
                 pixel_std: float = PIXEL_STD, temperature: float = 1.0,
                 logit_bias: Sequence[float] | None = None) -> None:
        super().__init__()
        if crop_size % 8 or not 48 <= crop_size <= 64:
            raise ValueError(f"crop_size must be a multiple of 8 in 48..64, got {crop_size}")
        self._config: dict[str, Any] = {
            "labels": list(labels), "crop_size": crop_size, "width": width, "fc_units": fc_units,
            "dropout": dropout, "pixel_mean": pixel_mean, "pixel_std": pixel_std,
        }
        self.logit_bias: torch.Tensor
        self.temperature: torch.Tensor
        self.register_buffer("logit_bias", torch.zeros(len(labels)), persistent=False)
        self.register_buffer("temperature", torch.ones(()), persistent=False)
        self.calibrate(temperature, logit_bias if logit_bias is not None else [0.0] * len(labels))
        self.crop_size = crop_size
        self.standardise = Standardise((1, 1, 1))
        self.standardise.mean.fill_(255.0 * pixel_mean)
        self.standardise.std.fill_(255.0 * pixel_std)
        self.localisation = Localisation(crop_size)
        self.base_grid: torch.Tensor
        self.register_buffer("base_grid", base_grid(crop_size), persistent=False)
        widths = (1, width, 2 * width, 4 * width)
        blocks = []
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            # conv -> BN -> ReLU, then conv -> BN -> ReLU -> 2x2 max-pooling
            blocks += [*list(conv_block(c_in, c_out))[:-1], conv_block(c_out, c_out)]
        self.features = nn.Sequential(*blocks)
        side = crop_size // 8
        self.drop = nn.Dropout(dropout)
        self.fc1 = nn.Linear(widths[-1] * side * side, fc_units)
        self.fc2 = nn.Linear(fc_units, len(labels))

    def config(self) -> dict[str, Any]:
        """Constructor arguments: ``FaceCNN(**model.config())`` rebuilds the architecture."""
        return dict(self._config)

    def calibrate(self, temperature: float, logit_bias: Sequence[float]) -> None:
        """Set the output calibration (see the module docstring)."""
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if len(logit_bias) != len(self.logit_bias):
            raise ValueError(f"need {len(self.logit_bias)} logit biases, got {len(logit_bias)}")
        self.logit_bias.copy_(torch.tensor([float(b) for b in logit_bias]))
        self.temperature.fill_(float(temperature))
        self._config["temperature"] = float(temperature)
        self._config["logit_bias"] = [float(b) for b in logit_bias]

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial transformer applied to standardised crops.

        The sampling grid is ``F.affine_grid(theta, x.shape, align_corners=False)`` written as one
        matrix product, which exports to ONNX opsets below 20 (no AffineGrid operator needed).
        """
        side = self.crop_size
        grid = (self.base_grid @ self.localisation(x).transpose(1, 2)).view(-1, side, side, 2)
        return F.grid_sample(x, grid, align_corners=False)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, fc_units) activations feeding the last fc layer."""
        features = self.features(self.transform(self.standardise(x))).flatten(1)
        return F.relu(self.fc1(self.drop(features)))

    def classifier(self, embedding: torch.Tensor) -> torch.Tensor:
        """Calibrated logits from the embedding (the last fc layer, after dropout)."""
        return (self.fc2(self.drop(embedding)) + self.logit_bias) / self.temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))

    def fc_penalty(self) -> torch.Tensor:
        """||w||^2 summed over the weights of the two fc layers (seed equation 1 without lambda)."""
        return self.fc1.weight.pow(2).sum() + self.fc2.weight.pow(2).sum()
