"""The speech CNN: one MFCC window (static, delta, delta-delta) -> emotion logits.

Input: (batch, 3, 99, 40) float32 raw MFCC windows from ``edge.features.mfcc.mfcc_windows``
(channels static/delta/delta-delta, 99 frames, 40 coefficients). A fixed linear map first undoes
python_speech_features' cepstral lifter and DCT, turning each frame's coefficients back into
log mel-filterbank energies (exact when, as by default, there are as many coefficients as mel
filters; with ``append_energy`` the first coefficient is the frame's log energy, which shifts the
whole frame by a constant): 3x3 convolutions then slide over a real spectro-temporal image, in
which neighbouring rows are neighbouring frequencies, rather than over cepstral indices. A fixed
per-channel, per-band standardisation follows (training statistics). Both fixed maps are buffers,
so the exported model takes raw MFCCs. Optionally (``time_norm``) each window's static log mel
rows lose their mean over the window's frames (per-utterance spectral mean normalisation, which
removes a fixed microphone or speaker colouring; no statistics of other windows are used). Then
conv blocks (3x3 conv, BatchNorm, ReLU, 2x2 max-pooling), pooling over the feature map
(``pooling``: "mean", the global average; "stats", the mean over frequency, then the mean and
standard deviation over time, concatenated), dropout, an fc embedding with ReLU, dropout, and an
fc classifier: with the default four blocks, 4 conv + 2 fc = 6 weight layers. The logits are divided
by ``temperature`` (1 while training; fitted on the validation actors afterwards by
``train.speech.confidence``), so the exported graph's softmax is the calibrated posterior.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.fft import idct
from torch import nn

from train.networks.layers import Standardise, conv_block

POOLINGS = ("mean", "stats")


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


class TemperatureScaled(nn.Sequential):
    """Layers whose output (logits) is divided by a temperature buffer (not saved: it travels in the config)."""

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__(*layers)
        self.temperature: torch.Tensor
        self.register_buffer("temperature", torch.ones(()), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) / self.temperature


class SpeechCNN(nn.Module):
    """Compact 2-D CNN over one MFCC window; ``embed`` gives the input of the classifier fc.

    ``mel_bands`` and ``ceplifter`` must be the MFCC settings the windows were made with
    (``MfccParams.nfilt`` and ``.ceplifter``).
    """

    def __init__(self, n_classes: int = 8, in_channels: int = 3, coefficients: int = 40, mel_bands: int = 40,
                 ceplifter: int = 22, channels: tuple[int, ...] = (16, 32, 64, 128), embedding: int = 128,
                 dropout: float = 0.3, pooling: str = "mean", time_norm: bool = False,
                 temperature: float = 1.0) -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels must name at least one conv block")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self._config: dict[str, Any] = {
            "n_classes": n_classes, "in_channels": in_channels, "coefficients": coefficients,
            "mel_bands": mel_bands, "ceplifter": ceplifter, "channels": list(channels), "embedding": embedding,
            "dropout": dropout, "pooling": pooling, "time_norm": time_norm,
        }
        self.pooling, self.time_norm = pooling, time_norm
        self.to_log_mel = CepstrumToLogMel(coefficients, mel_bands, ceplifter)
        self.standardise = Standardise((in_channels, 1, mel_bands))
        widths = (in_channels, *channels)
        self.features = nn.Sequential(*(conv_block(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)))
        pooled = channels[-1] * (2 if pooling == "stats" else 1)
        # Flatten is a no-op on the pooled vector; it keeps the state-dict keys of models saved before pooling options
        self.embedding = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(pooled, embedding),
                                       nn.ReLU(inplace=True))
        self.classifier = TemperatureScaled(nn.Dropout(dropout), nn.Linear(embedding, n_classes))
        self.calibrate(temperature)

    def config(self) -> dict[str, Any]:
        """Constructor arguments: ``SpeechCNN(**model.config())`` rebuilds the architecture."""
        return dict(self._config)

    def calibrate(self, temperature: float) -> None:
        """Set the temperature that divides the logits (fitted on validation actors, ``train.speech.confidence``)."""
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.classifier.temperature.fill_(float(temperature))
        self._config["temperature"] = float(temperature)

    def fit_standardisation(self, windows: torch.Tensor) -> None:
        """Set the input standardisation from training windows (raw MFCCs, as ``forward`` takes them)."""
        self.standardise.fit(self.log_mel(windows))

    def log_mel(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, channels, frames, bands) log mel image of raw MFCC windows, time-normalised if configured."""
        image = self.to_log_mel(x)
        if not self.time_norm:
            return image
        static = image[:, :1]
        return torch.cat([static - static.mean(dim=2, keepdim=True), image[:, 1:]], dim=1)

    def pool(self, maps: torch.Tensor) -> torch.Tensor:
        """(batch, C) or (batch, 2C) summary of (batch, C, time, frequency) feature maps."""
        if self.pooling == "mean":
            return maps.mean(dim=(2, 3))
        over_time = maps.mean(dim=3)
        return torch.cat([over_time.mean(dim=2), over_time.std(dim=2)], dim=1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, embedding) activations feeding the classifier."""
        return self.embedding(self.pool(self.features(self.standardise(self.log_mel(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))
