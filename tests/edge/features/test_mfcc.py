"""MFCC front end: values equal python_speech_features' own, window shapes and counts, parameters."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import python_speech_features as psf

from edge.errors import InputError
from edge.features.audio import SAMPLE_RATE, load_audio, peak_normalise, rms_normalise
from edge.features.mfcc import (
    MfccParams,
    mfcc_features,
    mfcc_windows,
    window_count,
    window_times,
)

DEFAULT = MfccParams()


@pytest.fixture(scope="module")
def speech(speech_flac: Path) -> np.ndarray:
    return load_audio(speech_flac)


def _reference(waveform: np.ndarray, params: MfccParams) -> list[np.ndarray]:
    """python_speech_features called directly: [mfcc, delta, delta of delta][: 1 + delta_order]."""
    coeffs = psf.mfcc(
        waveform.astype(np.float64),
        params.sample_rate,
        params.winlen,
        params.winstep,
        params.numcep,
        params.nfilt,
        params.nfft,
        params.lowfreq,
        params.highfreq,
        params.preemph,
        params.ceplifter,
        params.append_energy,
        winfunc={"rectangular": np.ones, "hamming": np.hamming, "hann": np.hanning}[params.frame_window],
    )
    d1 = psf.delta(coeffs, params.delta_width)
    return [coeffs, d1, psf.delta(d1, params.delta_width)][: 1 + params.delta_order]


def test_windows_equal_python_speech_features_on_each_normalised_window(speech: np.ndarray) -> None:
    windows = mfcc_windows(speech, DEFAULT)
    assert windows.dtype == np.float32
    for k, window in enumerate(windows):
        waveform = rms_normalise(speech[k * 8000 : k * 8000 + 16000], target_dbfs=-20.0, floor_dbfs=-60.0)
        for order, expected in enumerate(_reference(waveform, DEFAULT)):
            np.testing.assert_allclose(window[order], expected, rtol=1e-5, atol=1e-3)


def test_features_equal_python_speech_features_on_the_whole_signal(speech: np.ndarray) -> None:
    params = MfccParams(numcep=13, nfilt=26, frame_window="rectangular", level_normalisation="peak")
    features = mfcc_features(speech, params)
    expected = np.concatenate(_reference(peak_normalise(speech, 0.1, 1e-3), params), axis=1)
    assert features.shape == (409, 39) == (len(expected), params.n_features)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-3)


def test_short_signal_is_normalised_then_zero_padded_to_one_window(speech: np.ndarray) -> None:
    half = speech[12000:20000]
    windows = mfcc_windows(half, DEFAULT)
    assert windows.shape == (1, 3, 99, 40)
    padded = np.concatenate([rms_normalise(half), np.zeros(8000, np.float32)])
    np.testing.assert_allclose(windows[0, 0], _reference(padded, DEFAULT)[0], rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize(
    ("n_samples", "expected"),
    [(1, 1), (15999, 1), (16000, 1), (23999, 1), (24000, 2), (31999, 2), (32000, 3), (65666, 7)],
)
def test_window_count(n_samples: int, expected: int) -> None:
    assert window_count(n_samples, DEFAULT) == expected
    signal = np.random.default_rng(0).uniform(-0.1, 0.1, n_samples).astype(np.float32)
    assert mfcc_windows(signal, DEFAULT).shape == (expected, 3, DEFAULT.frames_per_window, 40)


@pytest.mark.parametrize(
    "params",
    [
        DEFAULT,
        MfccParams(winlen=0.032, winstep=0.016, nfft=512, delta_order=0, numcep=13),
        MfccParams(window_s=0.5, hop_s=0.25, delta_order=1),
        MfccParams(sample_rate=8000, nfft=256, window_s=1.5, hop_s=0.3),
    ],
)
def test_frames_per_window_matches_the_output(params: MfccParams, speech: np.ndarray) -> None:
    windows = mfcc_windows(speech[: 3 * params.sample_rate], params)
    assert windows.shape[1:] == (1 + params.delta_order, params.frames_per_window, params.numcep)
    assert len(windows) == window_count(3 * params.sample_rate, params)
    assert DEFAULT.frames_per_window == 99


def test_window_times() -> None:
    np.testing.assert_allclose(window_times(4, DEFAULT), [0.0, 0.5, 1.0, 1.5])
    np.testing.assert_allclose(window_times(3, MfccParams(hop_s=0.25)), [0.0, 0.25, 0.5])
    assert window_times(0, DEFAULT).shape == (0,)


def test_level_normalisation_makes_windows_independent_of_gain(speech: np.ndarray) -> None:
    # Window RMS of the take: -57.5, -20.7, -17.7, -17.8, -18.2, -21.4, -51.5 dBFS. At -20 dB gain
    # the speech windows stay above the -60 dBFS floor and must come out the same; the first and
    # last fall below it and keep part of their attenuation, as faint audio should.
    loud, quiet = mfcc_windows(speech, DEFAULT), mfcc_windows(0.1 * speech, DEFAULT)
    np.testing.assert_allclose(loud[1:6], quiet[1:6], rtol=1e-3, atol=2e-2)
    assert (loud[[0, 6], 0, :, 0] > quiet[[0, 6], 0, :, 0] + 1.0).all()
    raw = MfccParams(level_normalisation="none")
    assert np.abs(mfcc_windows(speech, raw)[:, 0] - mfcc_windows(0.1 * speech, raw)[:, 0]).max() > 1.0


def test_digital_silence_stays_silent_and_finite() -> None:
    windows = mfcc_windows(np.zeros(SAMPLE_RATE, np.float32), DEFAULT)
    assert np.isfinite(windows).all()
    np.testing.assert_array_equal(windows[0, 0, :, 1:], 0.0)


def test_empty_or_non_mono_signal_is_refused() -> None:
    with pytest.raises(InputError, match="empty signal"):
        mfcc_windows(np.zeros(0, np.float32), DEFAULT)
    with pytest.raises(InputError, match="empty signal"):
        mfcc_features(np.zeros(0, np.float32), DEFAULT)
    with pytest.raises(InputError, match="1-D float"):
        mfcc_windows(np.zeros((2, 16000), np.float32), DEFAULT)


def test_highfreq_defaults_to_nyquist() -> None:
    assert DEFAULT.highfreq == 8000.0
    assert MfccParams(sample_rate=8000, nfft=256).highfreq == 4000.0
    assert MfccParams(highfreq=8000).cache_key() == DEFAULT.cache_key()


def test_to_dict_is_json_and_round_trips() -> None:
    data = json.loads(json.dumps(DEFAULT.to_dict()))
    assert MfccParams(**data) == DEFAULT
    assert set(data) == {f.name for f in dataclasses.fields(MfccParams)}


def test_cache_key_is_stable() -> None:
    # Pinned: changes only when a setting, a default or the canonical form changes (which must
    # invalidate every feature cache), never between processes or runs.
    assert DEFAULT.cache_key() == "91e78d5a2ec3"
    assert MfccParams(window_s=1, lowfreq=0).cache_key() == DEFAULT.cache_key()


CHANGED: dict[str, Any] = {
    "sample_rate": 8000,
    "winlen": 0.03,
    "winstep": 0.02,
    "numcep": 13,
    "nfilt": 64,
    "nfft": 1024,
    "lowfreq": 50.0,
    "highfreq": 7600.0,
    "preemph": 0.95,
    "ceplifter": 0,
    "append_energy": False,
    "frame_window": "hann",
    "delta_order": 1,
    "delta_width": 3,
    "level_normalisation": "peak",
    "target_dbfs": -23.0,
    "floor_dbfs": -50.0,
    "window_s": 2.0,
    "hop_s": 0.25,
}


def test_cache_key_changes_with_every_parameter() -> None:
    assert set(CHANGED) == {f.name for f in dataclasses.fields(MfccParams)}
    keys = {name: MfccParams(**{name: value}).cache_key() for name, value in CHANGED.items()}
    assert DEFAULT.cache_key() not in keys.values()
    assert len(set(keys.values())) == len(CHANGED)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sample_rate", 0),
        ("sample_rate", 16000.0),
        ("winlen", 0),
        ("winstep", -0.01),
        ("numcep", 41),
        ("nfilt", 0),
        ("nfft", 256),
        ("lowfreq", -1),
        ("lowfreq", 9000),
        ("highfreq", 9000),
        ("preemph", 1.0),
        ("ceplifter", -1),
        ("append_energy", 1),
        ("frame_window", "blackman"),
        ("delta_order", 3),
        ("delta_width", 0),
        ("level_normalisation", "loudness"),
        ("target_dbfs", 3.0),
        ("floor_dbfs", -10.0),
        ("window_s", 0.01),
        ("hop_s", 0),
        ("winlen", "0.025"),
    ],
)
def test_params_are_validated_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(InputError, match=f"MfccParams.{field}"):
        MfccParams(**{field: value})  # type: ignore[arg-type]
