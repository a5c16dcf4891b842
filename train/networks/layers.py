"""Building blocks shared by the models, and the weight-layer count that keeps them under 10 layers.

A weight layer is a convolution or a fully connected (``nn.Linear``) layer; normalisation,
activation, pooling and dropout layers are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

WEIGHT_LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def count_weight_layers(module: nn.Module, exclude: Iterable[nn.Module] = ()) -> int:
    """Conv and Linear layers in ``module``, leaving out those inside the ``exclude`` sub-modules.

    ``exclude`` names branches off the classification path (e.g. a spatial transformer's
    localisation network), which are counted and reported on their own.
    """
    excluded = {id(layer) for branch in exclude for layer in branch.modules()}
    return sum(1 for layer in module.modules()
               if isinstance(layer, WEIGHT_LAYER_TYPES) and id(layer) not in excluded)


def conv_block(in_channels: int, out_channels: int, pool: int | tuple[int, int] = 2) -> nn.Sequential:
    """3x3 convolution (no bias) -> BatchNorm -> ReLU -> max-pooling: one weight layer."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(pool),
    )


class Standardise(nn.Module):
    """Fixed input standardisation ``(x - mean) / std`` whose statistics travel with the weights.

    The statistics are buffers (saved in the state dict and exported to ONNX), set once from the
    training inputs with ``fit``; ``shape`` is the broadcast shape of one input's statistics.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("std", torch.ones(shape))

    @torch.no_grad()
    def fit(self, inputs: torch.Tensor, min_std: float = 1e-3) -> None:
        """Set the statistics from ``inputs`` (n, *input shape), reducing the broadcast axes."""
        axes = [0] + [i + 1 for i, size in enumerate(self.mean.shape) if size == 1]
        self.mean.copy_(inputs.mean(dim=axes, keepdim=True)[0])
        self.std.copy_(inputs.std(dim=axes, keepdim=True)[0].clamp(min=min_std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std
