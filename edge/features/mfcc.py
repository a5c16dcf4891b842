"""MFCC features (python_speech_features) for the speech CNN: one implementation for training and the device.

``mfcc_windows`` cuts a waveform into fixed windows (``window_s`` long, ``hop_s`` apart, counted
in samples), level-normalises each window's waveform on its own and computes MFCCs plus deltas
per window, exactly as the device does on its ring buffer, so train and serve cannot drift.
Every setting lives once in ``MfccParams``, whose ``to_dict()`` goes into model sidecars and
whose ``cache_key()`` names feature caches.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import python_speech_features as psf
from python_speech_features.sigproc import round_half_up

from edge.errors import InputError
from edge.features.audio import as_signal, peak_normalise, rms_normalise

LEVEL_NORMALISATIONS = ("none", "peak", "rms")
FRAME_WINDOWS = {"rectangular": np.ones, "hamming": np.hamming, "hann": np.hanning}


@dataclass(frozen=True)
class MfccParams:
    """Every setting of the MFCC front end; the defaults are the shipped models' settings."""

    sample_rate: int = 16000
    """Sample rate (Hz) of the waveform the features are computed from."""
    winlen: float = 0.025
    """Analysis frame length in seconds."""
    winstep: float = 0.01
    """Step between analysis frames in seconds."""
    numcep: int = 40
    """Cepstral coefficients kept per frame."""
    nfilt: int = 40
    """Mel filters in the filterbank."""
    nfft: int = 512
    """FFT size; at least one analysis frame in samples."""
    lowfreq: float = 0.0
    """Lowest filterbank edge in Hz."""
    highfreq: float | None = None
    """Highest filterbank edge in Hz; None means sample_rate / 2 (filled in on construction)."""
    preemph: float = 0.97
    """Pre-emphasis coefficient (0 switches it off)."""
    ceplifter: int = 22
    """Cepstral lifter (0 switches it off)."""
    append_energy: bool = True
    """Replace the zeroth coefficient with the log frame energy."""
    frame_window: str = "hamming"
    """Window applied to each analysis frame: rectangular, hamming or hann."""
    delta_order: int = 2
    """0: coefficients only; 1: + deltas; 2: + delta-deltas."""
    delta_width: int = 2
    """Frames either side used for each delta."""
    level_normalisation: str = "rms"
    """Per-window waveform level normalisation: none, peak or rms."""
    target_dbfs: float = -20.0
    """Level (RMS for 'rms', peak for 'peak') each window is scaled to, in dB full scale."""
    floor_dbfs: float = -60.0
    """Windows quieter than this get this level's gain, so digital silence is not blown up."""
    window_s: float = 1.0
    """Length of one model input window in seconds."""
    hop_s: float = 0.5
    """Step between model input windows in seconds."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                raise InputError(f"MfccParams.{f.name} must be an integer, got {value!r}")
            if f.type in ("float", "float | None") and value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise InputError(f"MfccParams.{f.name} must be a number, got {value!r}")
                object.__setattr__(self, f.name, float(value))
        if self.highfreq is None:
            object.__setattr__(self, "highfreq", self.sample_rate / 2)
        self._check()

    def _check(self) -> None:
        def fail(name: str, rule: str) -> None:
            raise InputError(f"MfccParams.{name} {rule}, got {getattr(self, name)!r}")

        positive = ("sample_rate", "winlen", "winstep", "numcep", "nfilt", "delta_width", "window_s", "hop_s")
        for name in positive:
            if getattr(self, name) <= 0:
                fail(name, "must be > 0")
        if self.numcep > self.nfilt:
            fail("numcep", f"must be <= nfilt ({self.nfilt})")
        if self.nfft < self.frame_samples:
            fail("nfft", f"must be >= one analysis frame ({self.frame_samples} samples)")
        assert self.highfreq is not None
        if not 0 <= self.lowfreq < self.highfreq:
            fail("lowfreq", f"must be >= 0 and below highfreq ({self.highfreq})")
        if self.highfreq > self.sample_rate / 2:
            fail("highfreq", f"must be <= sample_rate / 2 ({self.sample_rate / 2})")
        if not 0 <= self.preemph < 1:
            fail("preemph", "must be in [0, 1)")
        if self.ceplifter < 0:
            fail("ceplifter", "must be >= 0")
        if not isinstance(self.append_energy, bool):
            fail("append_energy", "must be True or False")
        if self.frame_window not in FRAME_WINDOWS:
            fail("frame_window", f"must be one of {tuple(FRAME_WINDOWS)}")
        if self.delta_order not in (0, 1, 2):
            fail("delta_order", "must be 0, 1 or 2")
        if self.level_normalisation not in LEVEL_NORMALISATIONS:
            fail("level_normalisation", f"must be one of {LEVEL_NORMALISATIONS}")
        if self.target_dbfs > 0:
            fail("target_dbfs", "must be <= 0")
        if self.floor_dbfs >= self.target_dbfs:
            fail("floor_dbfs", f"must be below target_dbfs ({self.target_dbfs})")
        if self.window_samples < self.frame_samples:
            fail("window_s", f"must hold at least one analysis frame ({self.winlen} s)")

    @property
    def frame_samples(self) -> int:
        """Samples in one analysis frame (python_speech_features' rounding)."""
        return int(round_half_up(self.winlen * self.sample_rate))

    @property
    def step_samples(self) -> int:
        return int(round_half_up(self.winstep * self.sample_rate))

    @property
    def window_samples(self) -> int:
        return int(round_half_up(self.window_s * self.sample_rate))

    @property
    def hop_samples(self) -> int:
        return max(1, int(round_half_up(self.hop_s * self.sample_rate)))

    @property
    def frames_per_window(self) -> int:
        """Analysis frames in one window (python_speech_features zero-pads a last partial frame)."""
        return 1 + int(np.ceil((self.window_samples - self.frame_samples) / self.step_samples))

    @property
    def n_features(self) -> int:
        """Columns of ``mfcc_features``: coefficients, then each order of deltas."""
        return self.numcep * (1 + self.delta_order)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-serialisable dict; ``MfccParams(**d)`` rebuilds them."""
        return asdict(self)

    def cache_key(self) -> str:
        """First 12 hex digits of the SHA-256 of the canonical JSON of ``to_dict()``."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def normalise_level(signal: np.ndarray, params: MfccParams) -> np.ndarray:
    """The waveform scaled as ``params.level_normalisation`` says."""
    if params.level_normalisation == "rms":
        return rms_normalise(signal, params.target_dbfs, params.floor_dbfs)
    if params.level_normalisation == "peak":
        return peak_normalise(signal, 10 ** (params.target_dbfs / 20), 10 ** (params.floor_dbfs / 20))
    return signal


def _cepstra(signal: np.ndarray, params: MfccParams) -> np.ndarray:
    """(1 + delta_order, n_frames, numcep) float32: MFCCs of ``signal`` as given, then their deltas."""
    coeffs = psf.mfcc(
        signal.astype(np.float64),
        samplerate=params.sample_rate,
        winlen=params.winlen,
        winstep=params.winstep,
        numcep=params.numcep,
        nfilt=params.nfilt,
        nfft=params.nfft,
        lowfreq=params.lowfreq,
        highfreq=params.highfreq,
        preemph=params.preemph,
        ceplifter=params.ceplifter,
        appendEnergy=params.append_energy,
        winfunc=FRAME_WINDOWS[params.frame_window],
    )
    stack = [coeffs]
    for _ in range(params.delta_order):
        stack.append(psf.delta(stack[-1], params.delta_width))
    return np.stack(stack).astype(np.float32)


def _non_empty(signal: np.ndarray) -> np.ndarray:
    samples = as_signal(signal)
    if samples.size == 0:
        raise InputError("cannot compute MFCCs of an empty signal")
    return samples


def mfcc_features(signal: np.ndarray, params: MfccParams) -> np.ndarray:
    """(n_frames, numcep * (1 + delta_order)) float32 for the whole signal: coefficients, then deltas."""
    cepstra = _cepstra(normalise_level(_non_empty(signal), params), params)
    return np.concatenate(list(cepstra), axis=1)


def window_count(n_samples: int, params: MfccParams) -> int:
    """Windows ``mfcc_windows`` makes of ``n_samples``: 1 up to one window, then one per whole hop.

    A trailing part shorter than a hop is dropped, as on the device, which runs the model each
    time a hop of new audio completes a window in its ring buffer.
    """
    if n_samples <= params.window_samples:
        return 1
    return 1 + (n_samples - params.window_samples) // params.hop_samples


def mfcc_windows(signal: np.ndarray, params: MfccParams) -> np.ndarray:
    """(n_windows, 1 + delta_order, frames_per_window, numcep) float32 model inputs.

    Each window is level-normalised and turned into MFCCs + deltas independently. A signal
    shorter than one window is level-normalised and then zero-padded at the end to one window.
    """
    samples = _non_empty(signal)
    size, hop = params.window_samples, params.hop_samples
    windows = []
    for k in range(window_count(len(samples), params)):
        window = normalise_level(samples[k * hop : k * hop + size], params)
        windows.append(_cepstra(np.pad(window, (0, size - len(window))), params))
    return np.stack(windows)


def window_times(n_windows: int, params: MfccParams) -> np.ndarray:
    """Start time in seconds of each of ``n_windows`` windows from ``mfcc_windows``."""
    return np.arange(n_windows) * params.hop_samples / params.sample_rate
