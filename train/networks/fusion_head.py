"""The model-level fusion head (Aghajani 2022): speech embedding and face embedding concatenated -> fc -> logits.

Input: (batch, speech_dim + face_dim) float32, the concatenation ``[speech embedding, face
embedding]`` of ``SpeechCNN.embed`` and ``FaceCNN.embed`` (``fuse`` concatenates them for you).
The two embeddings come from different networks and have very different scales, so a fixed
per-feature standardisation (training statistics, held as buffers like the encoders' own input
standardisation; no trained weights) comes first; then dropout and one fc layer with logits over
``labels`` (the 7-class ``EMOTIONS``; softmax gives the fused posterior): 1 weight layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from edge.taxonomy import EMOTIONS
from train.networks.layers import Standardise

STD_FLOOR = 0.1
"""Least standard deviation of a feature, as a fraction of the mean one: an embedding unit that is
(almost) constant on the training pairs is not blown up when it moves on new data."""


class FusionHead(nn.Module):
    """Standardise -> dropout -> fc over concatenated speech and face embeddings; see the module docstring."""

    def __init__(self, speech_dim: int, face_dim: int, labels: Sequence[str] = EMOTIONS,
                 dropout: float = 0.3) -> None:
        super().__init__()
        if speech_dim < 1 or face_dim < 1:
            raise ValueError(f"embedding sizes must be positive, got speech {speech_dim} and face {face_dim}")
        self._config: dict[str, Any] = {"speech_dim": speech_dim, "face_dim": face_dim, "labels": list(labels),
                                        "dropout": dropout}
        self.speech_dim, self.face_dim = speech_dim, face_dim
        self.standardise = Standardise((speech_dim + face_dim,))
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(speech_dim + face_dim, len(labels))

    def config(self) -> dict[str, Any]:
        """Constructor arguments: ``FusionHead(**head.config())`` rebuilds the architecture."""
        return dict(self._config)

    def fit_standardisation(self, pairs: torch.Tensor) -> None:
        """Set the input standardisation from the training pairs (batch, speech_dim + face_dim)."""
        floor = STD_FLOOR * float(pairs.std(dim=0).mean())
        self.standardise.fit(pairs, min_std=max(floor, 1e-3))

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        """Logits (batch, len(labels)) of concatenated embeddings (batch, speech_dim + face_dim)."""
        if pairs.ndim != 2 or pairs.shape[1] != self.speech_dim + self.face_dim:
            raise ValueError(f"need (batch, {self.speech_dim} + {self.face_dim}) concatenated embeddings, "
                             f"got shape {tuple(pairs.shape)}")
        return self.fc(self.drop(self.standardise(pairs)))

    def fuse(self, speech: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        """Logits of one speech and one face embedding per row."""
        return self(torch.cat([speech, face], dim=1))
