"""Video decoding with PyAV: frame times, lazy iteration, audio-visual clips and broken files."""

from __future__ import annotations

import inspect
from pathlib import Path

import av
import numpy as np
import pytest

from edge.errors import EmptyMediaError, InputError, MediaDecodeError, NoAudioStreamError, NoVideoStreamError
from edge.features.audio import SAMPLE_RATE, load_audio
from edge.features.video import AVClip, iter_video_frames, open_clip

FRAME_STEP = 1001 / 30000  # 29.97 fps


@pytest.fixture(scope="module")
def all_pts(av_clip: Path) -> list[float]:
    return [frame.pts for frame in iter_video_frames(av_clip)]


@pytest.fixture(scope="module")
def clip(av_clip: Path) -> AVClip:
    return open_clip(av_clip)


def _write_video(path: Path, n_frames: int) -> Path:
    """A small MPEG-4 video without audio, written with PyAV."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
        for i in range(n_frames):
            image = np.full((48, 64, 3), 40 * i, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode())
    return path


def test_frame_times_are_regular_and_start_at_zero(all_pts: list[float]) -> None:
    pts = np.array(all_pts)
    assert pts[0] == pytest.approx(0.0, abs=1e-6)
    steps = np.diff(pts)
    assert np.all(steps > 0)
    np.testing.assert_allclose(steps, FRAME_STEP, atol=1e-4)


def test_frame_count_matches_rate_times_duration(all_pts: list[float], clip: AVClip) -> None:
    assert clip.fps == pytest.approx(30000 / 1001)
    assert len(all_pts) == pytest.approx(clip.fps * clip.duration, abs=1)


def test_frames_are_bgr_uint8(av_clip: Path) -> None:
    frames = iter_video_frames(av_clip)
    first = next(frames)
    frames.close()
    assert first.image.shape == (720, 1280, 3) and first.image.dtype == np.uint8
    # RAVDESS films against a white wall: the top-left corner is bright and nearly grey.
    corner = first.image[:50, :50].reshape(-1, 3).mean(axis=0)
    assert corner.min() > 150 and corner.max() - corner.min() < 30


def test_every_nth_keeps_the_frame_times(av_clip: Path, all_pts: list[float]) -> None:
    assert [frame.pts for frame in iter_video_frames(av_clip, every_nth=10)] == all_pts[::10]


def test_decoding_is_lazy(av_clip: Path) -> None:
    frames = iter_video_frames(av_clip)
    assert inspect.isgenerator(frames)
    assert inspect.getgeneratorstate(frames) == inspect.GEN_CREATED
    next(frames)
    frames.close()


def test_clip_audio_lines_up_with_the_video(clip: AVClip) -> None:
    assert clip.audio.dtype == np.float32 and clip.audio.ndim == 1
    assert len(clip.audio) / SAMPLE_RATE == pytest.approx(clip.duration, abs=0.05)
    assert abs(clip.audio_start) < 0.1
    assert 0.01 < np.abs(clip.audio).max() <= 1.0
    assert [frame.pts for frame in clip.frames(every_nth=30)] == pytest.approx(
        [0, 30 * FRAME_STEP, 60 * FRAME_STEP, 90 * FRAME_STEP]
    )


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.mp4"
    with pytest.raises(MediaDecodeError, match="missing.mp4"):
        next(iter_video_frames(missing))
    with pytest.raises(MediaDecodeError, match="missing.mp4"):
        open_clip(missing)


def test_corrupt_file(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(MediaDecodeError, match="corrupt.mp4"):
        next(iter_video_frames(corrupt))
    with pytest.raises(MediaDecodeError, match="corrupt.mp4"):
        open_clip(corrupt)


def test_audio_only_file_has_no_video(speech_flac: Path) -> None:
    with pytest.raises(NoVideoStreamError, match=speech_flac.name):
        next(iter_video_frames(speech_flac))
    with pytest.raises(NoVideoStreamError, match=speech_flac.name):
        open_clip(speech_flac)


def test_video_without_frames(tmp_path: Path) -> None:
    empty = _write_video(tmp_path / "empty.avi", 0)
    with pytest.raises(EmptyMediaError, match="empty.avi"):
        next(iter_video_frames(empty))


def test_video_without_audio(tmp_path: Path) -> None:
    silent = _write_video(tmp_path / "silent.mp4", 5)
    assert [frame.pts for frame in iter_video_frames(silent)] == pytest.approx([0, 0.04, 0.08, 0.12, 0.16])
    with pytest.raises(NoAudioStreamError, match="silent.mp4"):
        open_clip(silent)


def test_every_nth_must_be_positive(av_clip: Path) -> None:
    with pytest.raises(InputError, match="every_nth"):
        iter_video_frames(av_clip, every_nth=0)


@pytest.mark.shared_data
def test_every_shared_clip_opens_with_matching_audio(ravdess_av_dir: Path) -> None:
    clips = sorted(ravdess_av_dir.glob("Actor_05/*.mp4"))
    assert len(clips) == 14
    for path in clips:
        clip = open_clip(path)
        assert clip.fps == pytest.approx(30000 / 1001), path.name
        assert 2.5 < clip.duration < 4.5, path.name
        assert len(clip.audio) / SAMPLE_RATE == pytest.approx(clip.duration, abs=0.05), path.name
        assert abs(clip.audio_start) < 0.1, path.name


@pytest.mark.parametrize("keep_fraction", [0.5, 0.8])
def test_a_truncated_mp4_is_an_error_for_frames_and_for_audio(
    tmp_path: Path, av_clip: Path, keep_fraction: float
) -> None:
    """FFmpeg decodes a cut MP4 without complaint; the declared duration gives it away."""
    data = av_clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * keep_fraction)])
    with pytest.raises(MediaDecodeError, match=r"cut\.mp4: the video stream ends at .*truncated"):
        list(iter_video_frames(cut, every_nth=5))
    with pytest.raises(MediaDecodeError, match=r"cut\.mp4: the audio stream ends at .*truncated"):
        load_audio(cut)
