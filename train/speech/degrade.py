"""Degraded speech: white or babble noise at a set SNR, room reverberation, telephone band, level changes.

Used twice: the robustness benchmark degrades test takes with fixed ``Condition``s, and training
augmentation (``SpeechAugment``) degrades training takes with random ones, so that the model meets
in training what a kiosk microphone brings. Everything works on mono float waveforms in -1..1 at
the feature sample rate, before VAD and MFCCs (the device's feature path sees the degraded audio,
as it would on a device). The SNR is measured against the power of the voiced part of the clean
take (webrtcvad segments), not of the silence around it. Filtering is scipy's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import signal as sps

from edge.features.vad import VadParams, speech_segments

KINDS = ("clean", "white", "babble", "reverb", "telephone", "gain")
TELEPHONE_BAND_HZ = (300.0, 3400.0)
BABBLE_TALKERS = 4
BABBLE_SOURCES = 12
"""Recordings a babble source picks its talkers from (a fresh choice per take)."""

Babble = Callable[[int, np.random.Generator], np.ndarray]
"""``babble(n, rng)``: n samples of several other talkers speaking at once (unit power)."""


@dataclass(frozen=True)
class Condition:
    """One fixed degradation of the robustness benchmark: ``value`` is the SNR (dB), RT60 (s) or gain (dB)."""

    kind: str
    value: float = 0.0

    @property
    def name(self) -> str:
        if self.kind in ("white", "babble"):
            return f"{self.kind} {self.value:g} dB"
        if self.kind == "reverb":
            return f"reverb {self.value:g} s"
        if self.kind == "gain":
            return f"level {self.value:+g} dB"
        return self.kind


CONDITIONS = (
    Condition("clean"),
    *(Condition("white", snr) for snr in (20.0, 10.0, 5.0)),
    *(Condition("babble", snr) for snr in (20.0, 10.0, 5.0)),
    Condition("reverb", 0.6),
    Condition("telephone"),
    Condition("gain", -20.0),
    Condition("gain", 20.0),
)
"""The benchmark's conditions: the issue's list (noise at 20/10/5 dB, reverb, telephone, -20/+20 dB)."""


def voiced_power(audio: np.ndarray, sample_rate: int, vad: VadParams) -> float:
    """Mean power of the voiced samples (the whole signal when the VAD finds none)."""
    segments = speech_segments(audio, sample_rate, vad)
    voiced = np.concatenate([audio[round(a * sample_rate):round(b * sample_rate)] for a, b in segments]) \
        if segments else audio
    return float(np.mean(np.square(voiced.astype(np.float64)))) if voiced.size else 0.0


def add_noise(audio: np.ndarray, noise: np.ndarray, snr_db: float, reference_power: float) -> np.ndarray:
    """``audio`` plus ``noise`` scaled to ``snr_db`` below ``reference_power``."""
    noise_power = float(np.mean(np.square(noise.astype(np.float64))))
    if noise_power <= 0 or reference_power <= 0:
        return audio.astype(np.float32)
    scale = np.sqrt(reference_power / (noise_power * 10 ** (snr_db / 10)))
    return (audio + scale * noise).astype(np.float32)


def reverberate(audio: np.ndarray, rt60_s: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """``audio`` in a synthetic room: convolved with exponentially decaying noise (60 dB down after ``rt60_s``).

    The direct sound is the impulse response's first tap; the result keeps the input's length and RMS.
    """
    length = max(1, int(rt60_s * sample_rate))
    t = np.arange(length) / sample_rate
    response = rng.standard_normal(length) * np.exp(-6.9078 * t / rt60_s)   # ln(1000): -60 dB at rt60
    response[0] = 1.0
    wet = sps.fftconvolve(audio.astype(np.float64), response / np.sqrt(np.sum(response ** 2)))[: len(audio)]
    rms_in, rms_out = np.sqrt(np.mean(audio.astype(np.float64) ** 2)), np.sqrt(np.mean(wet ** 2))
    return (wet * (rms_in / rms_out if rms_out > 0 else 1.0)).astype(np.float32)


def telephone(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """``audio`` band-limited to the telephone band (300-3400 Hz, 4th-order Butterworth, zero phase)."""
    sos = sps.butter(4, TELEPHONE_BAND_HZ, btype="bandpass", fs=sample_rate, output="sos")
    return sps.sosfiltfilt(sos, audio.astype(np.float64)).astype(np.float32)


def gain(audio: np.ndarray, db: float) -> np.ndarray:
    """``audio`` scaled by ``db`` and clipped to full scale (+20 dB on a normal take clips hard)."""
    return np.clip(audio * 10 ** (db / 20), -1.0, 1.0).astype(np.float32)


def babble_from(talkers: Sequence[np.ndarray]) -> Babble:
    """A babble source that sums ``BABBLE_TALKERS`` random stretches of ``talkers``, each at unit power."""
    usable = [t.astype(np.float64) for t in talkers if t.size and np.any(t)]
    if not usable:
        raise ValueError("babble needs at least one non-silent recording")

    def make(n: int, rng: np.random.Generator) -> np.ndarray:
        mix = np.zeros(n)
        for k in rng.choice(len(usable), size=min(BABBLE_TALKERS, len(usable)), replace=False):
            voice = np.resize(usable[k], n + len(usable[k]))   # repeated: long enough for any start
            start = int(rng.integers(0, len(usable[k])))
            stretch = voice[start:start + n]
            mix += stretch / np.sqrt(np.mean(stretch ** 2) + 1e-12)
        return mix

    return make


def degrade(audio: np.ndarray, condition: Condition, sample_rate: int, vad: VadParams, rng: np.random.Generator,
            babble: Babble | None = None) -> np.ndarray:
    """``audio`` under ``condition`` (babble conditions need ``babble``)."""
    if condition.kind == "clean":
        return audio.astype(np.float32)
    if condition.kind in ("white", "babble"):
        if condition.kind == "white":
            noise = rng.standard_normal(len(audio))
        elif babble is None:
            raise ValueError("a babble condition needs recordings of other talkers")
        else:
            noise = babble(len(audio), rng)
        return add_noise(audio, noise, condition.value, voiced_power(audio, sample_rate, vad))
    if condition.kind == "reverb":
        return reverberate(audio, condition.value, sample_rate, rng)
    if condition.kind == "telephone":
        return telephone(audio, sample_rate)
    if condition.kind == "gain":
        return gain(audio, condition.value)
    raise ValueError(f"unknown degradation {condition.kind!r}; choose one of {KINDS}")


@dataclass(frozen=True)
class SpeechAugment:
    """Random degradations of training takes: ``copies`` degraded versions of each, beside the clean one.

    Each copy gets white or babble noise (even odds) at an SNR drawn from ``snr_db``, then with
    ``reverb_p`` a room (RT60 from ``rt60_s``), with ``telephone_p`` the telephone band, and a
    level change from ``gain_db`` (clipping above full scale). Draws are seeded by ``seed``, the take
    and the copy, so a cache rebuilds identically.
    """

    copies: int = 1
    snr_db: tuple[float, float] = (0.0, 20.0)
    reverb_p: float = 0.3
    rt60_s: tuple[float, float] = (0.2, 0.8)
    telephone_p: float = 0.2
    gain_db: tuple[float, float] = (-20.0, 10.0)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.copies < 1:
            raise ValueError(f"copies must be at least 1, got {self.copies}")
        for name in ("reverb_p", "telephone_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    def to_dict(self) -> dict[str, object]:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    def conditions(self, rng: np.random.Generator) -> list[Condition]:
        """The degradations of one copy, in the order they are applied."""
        chain = [Condition(str(rng.choice(["white", "babble"])), float(rng.uniform(*self.snr_db)))]
        if rng.random() < self.reverb_p:
            chain.append(Condition("reverb", float(rng.uniform(*self.rt60_s))))
        if rng.random() < self.telephone_p:
            chain.append(Condition("telephone"))
        chain.append(Condition("gain", float(rng.uniform(*self.gain_db))))
        return chain

    def apply(self, audio: np.ndarray, sample_rate: int, vad: VadParams, rng: np.random.Generator,
              babble: Babble | None) -> np.ndarray:
        """One random degraded copy of ``audio`` (white noise replaces babble when there is no babble source)."""
        out = audio.astype(np.float32)
        for condition in self.conditions(rng):
            if condition.kind == "babble" and babble is None:
                condition = Condition("white", condition.value)
            out = degrade(out, condition, sample_rate, vad, rng, babble)
        return out
