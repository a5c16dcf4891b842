"""The speech CNN: one MFCC window (static, delta, delta-delta) -> emotion logits.

Input: (batch, 3, 99, 40) float32 raw MFCC windows from ``edge.features.mfcc.mfcc_windows``
(channels static/delta/delta-delta, 99 frames, 40 coefficients). A fixed linear map first undoes
python_speech_features' cepstral lifter and DCT, turning each frame's coefficients back into
log mel-filterbank energies (exact when, as by default, there are as many coefficients as mel
filters; with ``append_energy`` the first coefficient is the frame's log energy, which shifts the
whole frame by a constant): 3x3 convolutions then slide over a real spectro-temporal image, in
which neighbouring rows are neighbouring frequencies, rather than over cepstral indices. A fixed
per-channel, per-band standardisation follows (training statistics). Both fixed maps are buffers,
so the exported model takes raw MFCCs. Then conv blocks (3x3 conv, BatchNorm, ReLU, 2x2
max-pooling), global average pooling, dropout, an fc embedding with ReLU, dropout, and an fc
classifier: with the default four blocks, 4 conv + 2 fc = 6 weight layers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.fft import idct
from torch import nn

from train.models.layers import Standardise, conv_block


def cepstrum_to_log_mel(coefficients: int, bands: int, ceplifter: int) -> np.ndarray:
    """(coefficients, bands) matrix M: ``mfcc @ M`` gives log mel energies (python_speech_features' MFCCs).

    python_speech_features computes ``lifter(dct(log_fbank, type=2, norm="ortho")[:numcep])``;
    M divides by the lifter and applies the orthonormal inverse DCT (truncated to the kept
    coefficients, i.e. a smoothed spectrum, when ``coefficients < bands``).
    """
    if not 0 < coefficients <= bands:
        raise ValueError(f"need 0 < coefficients <= bands, got {coefficients} and {bands}")
    n = np.arange(coefficients)
    lift = 1 + (ceplifter / 2) * np.sin(np.pi * n / ceplifter) if ceplifter > 0 else np.ones(coefficients)
    basis = idct(np.eye(bands), type=2, norm="ortho", axis=1)[:coefficients]
    return (basis / lift[:, None]).astype(np.float32)


class CepstrumToLogMel(nn.Module):
    """Fixed (not trained) map from MFCCs to log mel energies on the last axis; see ``cepstrum_to_log_mel``."""

    matrix: torch.Tensor
    pseudo_inverse: torch.Tensor

    def __init__(self, coefficients: int, bands: int, ceplifter: int) -> None:
        super().__init__()
        matrix = torch.from_numpy(cepstrum_to_log_mel(coefficients, bands, ceplifter))
        self.register_buffer("matrix", matrix)
        self.register_buffer("pseudo_inverse", torch.linalg.pinv(matrix), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.matrix

    def inverse(self, log_mel: torch.Tensor) -> torch.Tensor:
        """MFCCs of log mel energies (exact when coefficients == bands; else a least-squares fit)."""
        return log_mel @ self.pseudo_inverse


class SpeechCNN(nn.Module):
    """Compact 2-D CNN over one MFCC window; ``embed`` gives the input of the classifier fc.

    ``mel_bands`` and ``ceplifter`` must be the MFCC settings the windows were made with
    (``MfccParams.nfilt`` and ``.ceplifter``).
    """

    def __init__(self, n_classes: int = 8, in_channels: int = 3, coefficients: int = 40, mel_bands: int = 40,
                 ceplifter: int = 22, channels: tuple[int, ...] = (16, 32, 64, 128), embedding: int = 128,
                 dropout: float = 0.3) -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels must name at least one conv block")
        self._config: dict[str, Any] = {
            "n_classes": n_classes, "in_channels": in_channels, "coefficients": coefficients,
            "mel_bands": mel_bands, "ceplifter": ceplifter, "channels": list(channels), "embedding": embedding,
            "dropout": dropout,
        }
        self.to_log_mel = CepstrumToLogMel(coefficients, mel_bands, ceplifter)
        self.standardise = Standardise((in_channels, 1, mel_bands))
        widths = (in_channels, *channels)
        self.features = nn.Sequential(*(conv_block(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.embedding = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels[-1], embedding),
                                       nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(embedding, n_classes))

    def config(self) -> dict[str, Any]:
        """Constructor arguments: ``SpeechCNN(**model.config())`` rebuilds the architecture."""
        return dict(self._config)

    def fit_standardisation(self, windows: torch.Tensor) -> None:
        """Set the input standardisation from training windows (raw MFCCs, as ``forward`` takes them)."""
        self.standardise.fit(self.to_log_mel(windows))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, embedding) activations feeding the classifier."""
        return self.embedding(self.pool(self.features(self.standardise(self.to_log_mel(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))
