"""Audio decoding: real fixtures through PyAV, files made with PyAV in tmp_path, and bad files."""

from __future__ import annotations

import wave
from pathlib import Path

import av
import numpy as np
import pytest

from edge.errors import EmptyMediaError, InputError, MediaDecodeError, NoAudioStreamError
from edge.features.audio import (
    SAMPLE_RATE,
    as_signal,
    decode_audio_stream,
    load_audio,
    peak_normalise,
    rms_normalise,
)
from edge.features.media import open_media

FLAC_SAMPLES = 65666  # the speech fixture: 4.104 s at 16 kHz, as its header says
MP4_AAC_SAMPLES = 155648  # the AV fixture's AAC track: 152 frames of 1024 samples at 48 kHz


def _raw_decode(path: Path) -> np.ndarray:
    """The first audio stream's samples as the codec delivers them, (channels, n) float."""
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray() for frame in container.decode(audio=0)]
    raw = np.concatenate(frames, axis=1)
    return raw / 32768.0 if raw.dtype == np.int16 else raw


def _write_media(
    path: Path, audio: np.ndarray | None, codec: str = "flac", *, pts0: int = 0, video: bool = False
) -> None:
    """Encode 16 kHz mono float ``audio`` (if any) with ``codec``, starting at sample ``pts0``.

    With ``video``, ten 64x48 frames at 10 fps starting at time 0 are muxed beside it.
    """
    with av.open(str(path), "w") as container:
        vstream = container.add_stream("mpeg4", rate=10) if video else None
        astream = container.add_stream(codec, rate=SAMPLE_RATE, layout="mono") if audio is not None else None
        if vstream is not None:
            vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
            for i in range(10):
                image = np.full((48, 64, 3), 20 * i, np.uint8)
                container.mux(vstream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(vstream.encode(None))
        if astream is not None and audio is not None:
            pcm = np.rint(audio * 32767).astype(np.int16)
            for start in range(0, len(pcm), 1024):
                block = pcm[None, start : start + 1024]
                frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
                frame.sample_rate, frame.pts = SAMPLE_RATE, pts0 + start
                container.mux(astream.encode(frame))
            container.mux(astream.encode(None))


def test_flac_fixture_decodes_to_16k_float32_mono_unchanged(speech_flac: Path) -> None:
    samples = load_audio(speech_flac)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert len(samples) == FLAC_SAMPLES
    assert -1.0 <= samples.min() < 0 < samples.max() <= 1.0
    # Already 16 kHz mono: decoding must hand back the stored samples untouched.
    np.testing.assert_allclose(samples, _raw_decode(speech_flac)[0], atol=1e-6)


def test_mp4_aac_track_decodes_to_16k_with_its_duration(av_clip: Path) -> None:
    samples = load_audio(av_clip)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert len(samples) / SAMPLE_RATE == pytest.approx(MP4_AAC_SAMPLES / 48000, abs=1e-3)  # 3.243 s
    assert np.abs(samples).max() <= 1.0
    assert np.sqrt(np.mean(samples**2)) > 1e-3  # real speech, not silence


def test_stereo_is_averaged_to_mono_like_the_training_flacs(av_clip: Path) -> None:
    # The fixture's two AAC channels are identical, so the average equals either channel.
    # (FFmpeg's own stereo->mono matrix would give 0.707 * (L + R), 3 dB louder.)
    raw = _raw_decode(av_clip)
    assert raw.shape == (2, MP4_AAC_SAMPLES)
    samples = load_audio(av_clip, sample_rate=48000)
    np.testing.assert_allclose(samples, raw.mean(axis=0), atol=1e-6)


@pytest.mark.parametrize(("suffix", "codec"), [(".mp3", "libmp3lame"), (".mka", "flac"), (".ogg", "libopus")])
def test_other_containers_decode(tmp_path: Path, speech_flac: Path, suffix: str, codec: str) -> None:
    reference = load_audio(speech_flac)
    path = tmp_path / f"take{suffix}"
    _write_media(path, reference, codec)
    samples = load_audio(path)
    assert abs(len(samples) - len(reference)) < 0.01 * SAMPLE_RATE
    assert np.sqrt(np.mean(samples**2)) == pytest.approx(np.sqrt(np.mean(reference**2)), rel=0.1)


def test_decode_audio_stream_reports_start_on_container_time_base(
    av_clip: Path, speech_flac: Path, tmp_path: Path
) -> None:
    with open_media(av_clip) as container:
        samples, start = decode_audio_stream(container, av_clip, SAMPLE_RATE)
    assert start == 0.0 and len(samples) > 0
    # Audio that begins 0.5 s after the video: the offset must survive.
    path = tmp_path / "late_audio.mkv"
    _write_media(path, load_audio(speech_flac)[:8000], pts0=8000, video=True)
    with open_media(path) as container:
        _, start = decode_audio_stream(container, path, SAMPLE_RATE)
    assert start == pytest.approx(0.5, abs=1e-3)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.wav"
    with pytest.raises(MediaDecodeError, match=r"nope\.wav.*no such file"):
        load_audio(path)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(MediaDecodeError, match="no such file"):
        load_audio(tmp_path)


def test_zero_length_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(EmptyMediaError, match=r"empty\.wav.*0 bytes"):
        load_audio(path)


def test_not_a_media_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp3"
    path.write_text("these are not audio samples\n" * 20)
    with pytest.raises(MediaDecodeError, match=r"notes\.mp3.*not a readable media file") as info:
        load_audio(path)
    assert type(info.value) is MediaDecodeError


def test_video_without_audio(tmp_path: Path) -> None:
    path = tmp_path / "silent_film.mp4"
    _write_media(path, None, video=True)
    with pytest.raises(NoAudioStreamError, match=r"silent_film\.mp4.*no audio stream"):
        load_audio(path)


def test_audio_stream_without_samples(tmp_path: Path) -> None:
    path = tmp_path / "nothing.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(b"")
    with pytest.raises(EmptyMediaError, match=r"nothing\.wav.*no samples"):
        load_audio(path)


def test_truncated_flac_is_an_error_not_a_silent_prefix(tmp_path: Path, speech_flac: Path) -> None:
    # FFmpeg decodes the whole frames of the first 30 % (about 1 s) and then fails on the cut
    # frame; a prefix would pass for a short take, so the file is rejected.
    data = speech_flac.read_bytes()
    path = tmp_path / "cut.flac"
    path.write_bytes(data[: int(len(data) * 0.3)])
    with pytest.raises(MediaDecodeError, match=r"cut\.flac.*failed after 1\.\d\d s \(truncated or corrupt"):
        load_audio(path)


def test_sample_rate_must_be_a_positive_int(speech_flac: Path) -> None:
    for bad in (0, -16000, 16000.0):
        with pytest.raises(InputError, match="sample_rate"):
            load_audio(speech_flac, sample_rate=bad)  # type: ignore[arg-type]


def test_resampling_to_8k_halves_the_length(speech_flac: Path) -> None:
    assert len(load_audio(speech_flac, sample_rate=8000)) == pytest.approx(FLAC_SAMPLES / 2, abs=2)


def test_peak_normalise() -> None:
    signal = np.array([0.1, -0.2, 0.05], np.float32)
    np.testing.assert_allclose(peak_normalise(signal), [0.45, -0.9, 0.225], rtol=1e-6)
    assert not peak_normalise(np.zeros(10, np.float32)).any()
    # Below the floor the gain stops growing: 1e-5 peak gets the gain of a 1e-3 peak.
    np.testing.assert_allclose(peak_normalise(np.array([1e-5], np.float32)), [0.9e-2], rtol=1e-5)


def test_rms_normalise(speech_flac: Path) -> None:
    speech = load_audio(speech_flac)
    out = rms_normalise(speech, target_dbfs=-20.0)
    assert out.dtype == np.float32
    assert 20 * np.log10(np.sqrt(np.mean(out.astype(np.float64) ** 2))) == pytest.approx(-20.0, abs=1e-3)
    assert not rms_normalise(np.zeros(100, np.float32)).any()
    faint = np.full(100, 1e-5, np.float32)  # -100 dBFS: raised by at most the floor's 40 dB
    np.testing.assert_allclose(rms_normalise(faint), faint * 100.0, rtol=1e-5)


def test_as_signal_rejects_non_mono_float() -> None:
    assert as_signal(np.zeros(3, np.float64)).dtype == np.float32
    with pytest.raises(InputError, match=r"1-D float.*\(2, 3\)"):
        as_signal(np.zeros((2, 3), np.float32))
    with pytest.raises(InputError, match="int16"):
        as_signal(np.zeros(3, np.int16))


@pytest.mark.shared_data
def test_every_av_take_decodes_to_its_stated_duration(ravdess_av_dir: Path) -> None:
    takes = sorted(ravdess_av_dir.glob("Actor_05/*.mp4"))
    assert len(takes) == 14
    for take in takes:
        with open_media(take) as container:
            stream = container.streams.audio[0]
            assert stream.duration is not None and stream.time_base is not None
            stated = float(stream.duration * stream.time_base)
            samples, start = decode_audio_stream(container, take, SAMPLE_RATE)
        # AAC decodes whole 1024-sample frames: at most one frame (21 ms) past the stated end.
        assert 0 <= len(samples) / SAMPLE_RATE - stated < 0.025, take.name
        assert start == 0.0, take.name
