"""Capture sources: file replay pacing, order and looping; camera URIs, loss and recovery; bounded queues."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.capture import open_sources
from edge.capture.camera import CameraSource, camera_target, csi_pipeline
from edge.capture.file_replay import FileReplaySource
from edge.capture.microphone import MicrophoneSource
from edge.capture.queues import DropOldestQueue
from edge.capture.source import AudioBlock, Backoff, BlockCutter, Captured, CapturedFrame
from edge.config.schema import SourceConfig
from edge.errors import InputError, MediaDecodeError
from edge.features.video import iter_video_frames

CLIP_SECONDS = 3.24  # the bundled clip: 97 frames at 29.97 fps, AAC audio to 3.243 s
CLIP_FRAMES = 97


def split(items: list) -> tuple[list[CapturedFrame], list[AudioBlock]]:
    return [i for i in items if isinstance(i, CapturedFrame)], [i for i in items if isinstance(i, AudioBlock)]


def assert_interleaved(items: list) -> None:
    """Before frame k (at k / 29.97 s) the audio emitted ends no later than that frame's time plus one block."""
    audio_seconds = 0.0
    for item in items:
        if isinstance(item, AudioBlock):
            audio_seconds += len(item.samples) / item.sample_rate
        else:
            frame_time = item.index / 29.97
            assert audio_seconds <= frame_time + 0.021, f"audio ran ahead of frame {item.index}"
            assert audio_seconds >= frame_time - 0.05, f"audio lagged behind frame {item.index}"


def test_real_time_replay_takes_the_clip_length_in_presentation_order(av_clip: Path) -> None:
    source = FileReplaySource(av_clip, realtime=True)
    started = time.monotonic()
    items = list(source.items())
    wall = time.monotonic() - started
    assert CLIP_SECONDS - 0.05 <= wall <= CLIP_SECONDS + 0.6
    frames, audio = split(items)
    assert [f.index for f in frames] == list(range(CLIP_FRAMES))
    assert frames[0].image.shape == (720, 1280, 3) and frames[0].image.dtype == np.uint8
    assert {len(b.samples) for b in audio[:-1]} == {320} and audio[-1].sample_rate == 16000
    assert [b.index for b in audio] == list(np.cumsum([0] + [len(b.samples) for b in audio[:-1]]))
    assert abs(sum(len(b.samples) for b in audio) / 16000 - CLIP_SECONDS) < 0.01
    stamps = [item.t for item in items]
    assert all(later >= earlier for earlier, later in zip(stamps, stamps[1:], strict=False))
    # Paced: frame k is captured k / 29.97 s after frame 0 (within scheduling jitter).
    offsets = np.array([f.t - frames[0].t for f in frames]) - np.arange(CLIP_FRAMES) / 29.97
    assert np.abs(offsets).max() < 0.1
    assert_interleaved(items)


def test_as_fast_as_possible_replay_is_much_faster_and_identical_in_content(av_clip: Path) -> None:
    started = time.monotonic()
    items = list(FileReplaySource(av_clip, realtime=False).items())
    wall = time.monotonic() - started
    assert wall < CLIP_SECONDS * 0.75
    frames, audio = split(items)
    assert len(frames) == CLIP_FRAMES and abs(sum(len(b.samples) for b in audio) / 16000 - CLIP_SECONDS) < 0.01
    assert_interleaved(items)


def test_the_replayed_audio_is_the_decoded_track(av_clip: Path) -> None:
    from edge.features.audio import load_audio

    _, audio = split(list(FileReplaySource(av_clip, realtime=False).items()))
    np.testing.assert_allclose(np.concatenate([b.samples for b in audio]), load_audio(av_clip), atol=1e-6)


def test_loop_replays_again_with_continuing_indices_until_stopped(av_clip: Path) -> None:
    source = FileReplaySource(av_clip, realtime=False, loop=True)
    frames: list[CapturedFrame] = []
    for item in source.items():
        if isinstance(item, CapturedFrame):
            frames.append(item)
            if len(frames) == 2 * CLIP_FRAMES + 10:
                source.stop()
    assert [f.index for f in frames] == list(range(2 * CLIP_FRAMES + 10))
    assert source.counters()["passes"] == 2
    np.testing.assert_array_equal(frames[CLIP_FRAMES].image, frames[0].image)  # the second pass starts over
    stamps = [f.t for f in frames]
    assert all(later >= earlier for earlier, later in zip(stamps, stamps[1:], strict=False))


def test_a_source_thread_ends_with_the_file_and_stop_is_prompt(av_clip: Path) -> None:
    received: list = []
    finite = FileReplaySource(av_clip, realtime=False)
    finite.start(received.append)
    assert finite.wait(10) and finite.error is None
    assert len(split(received)[0]) == CLIP_FRAMES
    endless = FileReplaySource(av_clip, realtime=True, loop=True)
    endless.start(lambda item: None)
    time.sleep(0.3)
    started = time.monotonic()
    endless.stop()
    assert endless.wait(0) and time.monotonic() - started < 0.5


def test_a_bad_file_is_refused_with_its_name(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(MediaDecodeError, match="junk.mp4"):
        FileReplaySource(junk)


def test_open_sources_picks_the_source_by_uri(av_clip: Path) -> None:
    [replay] = open_sources(SourceConfig(video=f"file://{av_clip}", realtime=False, loop=True))
    assert isinstance(replay, FileReplaySource) and replay.lossless and replay.loop
    camera, mic = open_sources(SourceConfig(video="v4l2:///dev/video7", audio="default"))
    assert isinstance(camera, CameraSource) and isinstance(mic, MicrophoneSource) and not camera.lossless
    with pytest.raises(InputError, match="brings its own audio"):
        open_sources(SourceConfig(video=f"file://{av_clip}", audio="default"))
    with pytest.raises(InputError, match="no source"):
        open_sources(SourceConfig())


def test_camera_uris_map_to_opencv_backends() -> None:
    assert camera_target("v4l2:///dev/video0") == ("/dev/video0", cv2.CAP_V4L2)
    pipeline = "videotestsrc ! videoconvert ! appsink"
    assert camera_target(f"gst://{pipeline}") == (pipeline, cv2.CAP_GSTREAMER)
    target, api = camera_target("csi://1")
    assert api == cv2.CAP_GSTREAMER and target == csi_pipeline(1)
    assert target.startswith("nvarguscamerasrc sensor-id=1 ") and target.endswith("appsink drop=true max-buffers=1")
    for bad, message in [("v4l2://video0", "device node"), ("gst://videotestsrc", "appsink"),
                         ("csi://front", "sensor id"), ("rtsp://cam", "not a camera URI")]:
        with pytest.raises(InputError, match=message):
            camera_target(bad)


class ScriptedCapture:
    """A capture-like object: opens or not, then yields ``frames`` frames before its reads fail."""

    def __init__(self, opens: bool, frames: int) -> None:
        self.opens, self.frames, self.released = opens, frames, False

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.opens

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.frames == 0:
            return False, None
        self.frames -= 1
        return True, np.full((4, 4, 3), self.frames % 256, np.uint8)

    def release(self) -> None:
        self.released = True


def test_a_camera_that_fails_to_open_then_disappears_is_reopened_with_backoff() -> None:
    script = [ScriptedCapture(False, 0), ScriptedCapture(False, 0), ScriptedCapture(True, 5),
              ScriptedCapture(True, 10**9)]
    opened: list[ScriptedCapture] = []

    def opener() -> ScriptedCapture:
        opened.append(script[min(len(opened), len(script) - 1)])
        return opened[-1]

    backoff = Backoff(initial=0.02, maximum=0.05)
    source = CameraSource(opener, backoff=backoff)
    frames: list[CapturedFrame] = []
    enough = threading.Event()

    def emit(item: Captured) -> None:
        assert isinstance(item, CapturedFrame)
        frames.append(item)
        if len(frames) >= 50:
            enough.set()

    started = time.monotonic()
    source.start(emit)
    assert enough.wait(5)
    source.stop()
    assert [f.index for f in frames[:50]] == list(range(50))  # indices run on across the reopen
    assert source.counters() == {"reopens": 1, "read_failures": 1, "open_failures": 2}
    assert all(capture.released for capture in opened[:3])
    assert time.monotonic() - started >= 0.02 + 0.04  # two open failures waited 0.02 s and 0.04 s
    stamps = [f.t for f in frames]
    assert all(later >= earlier for earlier, later in zip(stamps, stamps[1:], strict=False))


def test_a_real_opencv_capture_is_read_and_reopened_when_it_ends(av_clip: Path) -> None:
    """cv2.VideoCapture on the real clip: its reads fail at the end, as a vanished camera's do."""
    source = CameraSource(lambda: cv2.VideoCapture(str(av_clip)), backoff=Backoff(0.01, 0.01))
    frames: list[CapturedFrame] = []
    done = threading.Event()

    def emit(item: Captured) -> None:
        assert isinstance(item, CapturedFrame)
        frames.append(item)
        if len(frames) == CLIP_FRAMES + 5:
            done.set()

    source.start(emit)
    assert done.wait(20)
    source.stop()
    assert frames[0].image.shape == (720, 1280, 3)
    assert source.counters()["reopens"] >= 1 and source.counters()["read_failures"] >= 1
    np.testing.assert_array_equal(frames[CLIP_FRAMES].image, frames[0].image)


def test_backoff_doubles_up_to_its_maximum_and_resets() -> None:
    backoff = Backoff(initial=0.5, maximum=3.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_block_cutter_makes_exact_blocks_from_any_sizes() -> None:
    cutter = BlockCutter(320)
    signal = np.arange(1000, dtype=np.float32)
    blocks = cutter.push(signal[:100]) + cutter.push(signal[100:700]) + cutter.push(signal[700:])
    assert [len(b) for b in blocks] == [320, 320, 320] and cutter.pending == 40
    tail = cutter.flush()
    np.testing.assert_array_equal(np.concatenate(blocks + tail), signal)


def test_a_full_queue_drops_the_oldest_and_counts_it() -> None:
    queue: DropOldestQueue[int] = DropOldestQueue("frames", 3)
    kept = [queue.put(k) for k in range(5)]
    assert kept == [True, True, True, False, False]
    assert queue.dropped == 2 and queue.put_count == 5 and len(queue) == 3
    assert queue.get_batch(timeout=0) == [2, 3, 4]
    assert queue.get_batch(timeout=0.01) == []


def test_put_wait_blocks_until_room_and_close_ends_the_consumer() -> None:
    queue: DropOldestQueue[int] = DropOldestQueue("lossless", 1)
    assert queue.put_wait(1, timeout=0.1)
    assert not queue.put_wait(2, timeout=0.05)  # full: times out
    threading.Timer(0.05, lambda: queue.get_batch(timeout=0)).start()
    assert queue.put_wait(3, timeout=2)  # room made by the consumer
    assert queue.get_batch(timeout=0, max_items=5) == [3] and queue.dropped == 0
    queue.put(4)
    queue.close()
    assert not queue.finished and queue.get_batch(timeout=0) == [4] and queue.finished
    assert not queue.put_wait(5, timeout=1)
    with pytest.raises(RuntimeError, match="closed"):
        queue.put(6)


def test_a_replayed_frame_is_converted_only_when_its_image_is_read(av_clip: Path) -> None:
    calls: list[int] = []

    def convert() -> np.ndarray:
        calls.append(1)
        return np.zeros((2, 2, 3), dtype=np.uint8)

    frame = CapturedFrame(0.0, 0, convert=convert)
    assert calls == []
    assert frame.image is frame.image and calls == [1]   # converted once, on first read
    with pytest.raises(ValueError, match="not both"):
        CapturedFrame(0.0, 0, np.zeros((2, 2, 3), np.uint8), convert=convert)
    with pytest.raises(ValueError, match="needs its image"):
        CapturedFrame(0.0, 0)
    frames, _ = split(list(FileReplaySource(av_clip, realtime=False).items()))
    assert [f.index for f in frames] == list(range(CLIP_FRAMES))
    assert np.array_equal(frames[50].image, list(iter_video_frames(av_clip, 1))[50].image)   # read after the pass


def test_decoder_threads_one_decodes_the_same_frames(av_clip: Path) -> None:
    frames, _ = split(list(FileReplaySource(av_clip, realtime=False, decoder_threads=1).items()))
    reference = list(iter_video_frames(av_clip, 1))
    assert len(frames) == len(reference) and np.array_equal(frames[-1].image, reference[-1].image)
