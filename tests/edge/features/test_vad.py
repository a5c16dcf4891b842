"""Voice activity detection on the real RAVDESS fixtures, on silence and noise, offline and live."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.errors import InputError
from edge.features.audio import SAMPLE_RATE, load_audio
from edge.features.vad import (
    DEFAULT_VAD_PARAMS,
    StreamGate,
    VadParams,
    speech_mask,
    speech_segments,
    trim_silence,
)


@pytest.fixture(scope="module")
def flac_speech(speech_flac: Path) -> np.ndarray:
    return load_audio(speech_flac)


@pytest.fixture(scope="module")
def mp4_speech(av_clip: Path) -> np.ndarray:
    return load_audio(av_clip)


def _white_noise(dbfs: float, seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(int(seconds * SAMPLE_RATE))
    return (noise * 10 ** (dbfs / 20) / np.sqrt(np.mean(noise**2))).astype(np.float32)


def _selected(signal: np.ndarray, params: VadParams = DEFAULT_VAD_PARAMS) -> np.ndarray:
    """The samples speech_segments selects, concatenated."""
    spans = speech_segments(signal, SAMPLE_RATE, params)
    return np.concatenate([signal[round(a * SAMPLE_RATE) : round(b * SAMPLE_RATE)] for a, b in spans])


def _gate_output(
    signal: np.ndarray, block_sizes: np.ndarray, params: VadParams = DEFAULT_VAD_PARAMS
) -> np.ndarray:
    """Feed ``signal`` to a fresh gate in blocks; check each chunk's position; return all voiced samples."""
    gate, chunks, start = StreamGate(SAMPLE_RATE, params), [], 0
    for size in block_sizes:
        chunks += gate.feed(signal[start : start + size])
        start += size
        if start >= len(signal):
            break
    for chunk in chunks:
        np.testing.assert_array_equal(
            chunk.samples, signal[chunk.start_sample : chunk.start_sample + len(chunk.samples)]
        )
    assert all(a.end <= b.start for a, b in zip(chunks, chunks[1:], strict=False))
    return np.concatenate([c.samples for c in chunks]) if chunks else np.zeros(0, np.float32)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("aggressiveness", 4),
        ("aggressiveness", -1),
        ("aggressiveness", True),
        ("frame_ms", 25),
        ("frame_ms", 30.0),
        ("padding_ms", -30),
        ("min_speech_ms", -1),
    ],
)
def test_params_are_validated_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(InputError, match=f"VadParams.{field}"):
        VadParams(**{field: value})  # type: ignore[arg-type]


def test_params_to_dict_round_trips() -> None:
    params = VadParams(aggressiveness=3, frame_ms=20, padding_ms=200, min_speech_ms=100)
    assert params.to_dict() == {"aggressiveness": 3, "frame_ms": 20, "padding_ms": 200, "min_speech_ms": 100}
    assert VadParams(**params.to_dict()) == params
    assert (params.padding_frames, params.min_speech_frames) == (10, 5)


@pytest.mark.parametrize("rate", [22050, 44100, 16001])
def test_sample_rate_must_suit_webrtcvad(rate: int) -> None:
    with pytest.raises(InputError, match=rf"8000, 16000, 32000, 48000.*{rate} Hz"):
        speech_mask(np.zeros(rate, np.float32), rate)
    with pytest.raises(InputError, match=f"{rate} Hz"):
        StreamGate(rate)


def test_speech_found_in_the_real_takes(flac_speech: np.ndarray, mp4_speech: np.ndarray) -> None:
    # Measured with the defaults: flac (4.10 s) -> one segment 0.27-3.48 s; mp4 (3.24 s) -> 0.72-2.76 s.
    for signal, low, high in ((flac_speech, 2.7, 3.5), (mp4_speech, 1.6, 2.4)):
        duration = len(signal) / SAMPLE_RATE
        segments = speech_segments(signal)
        assert segments, "no speech found in a real take"
        assert all(0 <= a < b <= duration for a, b in segments)
        assert low <= sum(b - a for a, b in segments) <= high
        assert segments[0][0] > 0.1 and segments[-1][1] < duration - 0.3  # silence at both ends


def test_mask_has_one_decision_per_whole_frame(flac_speech: np.ndarray) -> None:
    mask = speech_mask(flac_speech, SAMPLE_RATE, VadParams(frame_ms=20))
    assert mask.dtype == bool and len(mask) == len(flac_speech) // 320
    assert 0.3 < mask.mean() < 0.9


def test_no_speech_in_digital_silence() -> None:
    silence = np.zeros(2 * SAMPLE_RATE, np.float32)
    assert not speech_mask(silence).any()
    assert speech_segments(silence) == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_speech_in_low_level_noise(seed: int) -> None:
    noise = _white_noise(-60.0, seed=seed)
    assert speech_segments(noise) == []
    # webrtcvad calls its first ~90 ms of noise voiced while it adapts; min_speech_ms drops that.
    assert speech_mask(noise)[:3].any()
    assert speech_segments(noise, SAMPLE_RATE, VadParams(min_speech_ms=0)) != []


def test_trim_silence_shortens_the_take_and_keeps_its_speech(flac_speech: np.ndarray) -> None:
    trimmed = trim_silence(flac_speech)
    assert len(trimmed) < 0.85 * len(flac_speech)
    assert np.sum(trimmed.astype(np.float64) ** 2) > 0.99 * np.sum(flac_speech.astype(np.float64) ** 2)
    (start, end), *_ = speech_segments(flac_speech)
    np.testing.assert_array_equal(trimmed, flac_speech[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)])


def test_trim_silence_of_silence_is_empty() -> None:
    trimmed = trim_silence(np.zeros(SAMPLE_RATE, np.float32))
    assert trimmed.dtype == np.float32 and trimmed.shape == (0,)


def test_segments_merge_across_short_pauses_and_split_at_long_ones(flac_speech: np.ndarray) -> None:
    speech = trim_silence(flac_speech)
    for gap_s, n_segments in ((0.3, 1), (2.0, 2)):
        signal = np.concatenate([speech, np.zeros(int(gap_s * SAMPLE_RATE), np.float32), speech])
        assert len(speech_segments(signal)) == n_segments


@pytest.mark.parametrize(("seed", "largest_block"), [(0, 40), (1, 3000), (2, 3000), (3, 40000)])
def test_gate_output_is_independent_of_block_sizes(
    flac_speech: np.ndarray, seed: int, largest_block: int
) -> None:
    signal = np.concatenate([flac_speech, np.zeros(SAMPLE_RATE, np.float32), flac_speech])
    reference = _selected(signal)
    assert len(speech_segments(signal)) == 2
    sizes = np.random.default_rng(seed).integers(0, largest_block, size=len(signal))
    np.testing.assert_array_equal(_gate_output(signal, sizes), reference)


def test_gate_matches_offline_segments_with_other_params(mp4_speech: np.ndarray) -> None:
    params = VadParams(aggressiveness=1, frame_ms=10, padding_ms=100, min_speech_ms=50)
    sizes = np.full(len(mp4_speech), 160)  # the 10 ms blocks a sound card delivers
    np.testing.assert_array_equal(_gate_output(mp4_speech, sizes, params), _selected(mp4_speech, params))


def test_gate_holds_back_onset_until_speech_is_certain(flac_speech: np.ndarray) -> None:
    gate = StreamGate()
    (start, _), *_ = speech_segments(flac_speech)
    onset = round(start * SAMPLE_RATE)
    # Up to the padded onset nothing is released; the pre-roll comes out once the run is long enough.
    assert gate.feed(flac_speech[:onset]) == []
    released = gate.feed(flac_speech[onset : onset + SAMPLE_RATE])
    assert released and released[0].start == pytest.approx(start)


def test_gate_passes_nothing_of_silence_or_faint_noise() -> None:
    signal = np.concatenate([np.zeros(SAMPLE_RATE, np.float32), _white_noise(-60.0)])
    assert _gate_output(signal, np.full(100, 512)).size == 0


@pytest.mark.shared_data
def test_speech_found_in_every_av_take(ravdess_av_dir: Path) -> None:
    # Measured: one segment per take, starting 0.18-0.87 s and ending 2.55-2.82 s.
    for take in sorted(ravdess_av_dir.glob("Actor_05/*.mp4")):
        segments = speech_segments(load_audio(take))
        assert len(segments) == 1, take.name
        assert 1.5 <= segments[0][1] - segments[0][0] <= 2.8, take.name
