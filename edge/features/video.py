"""Video decoding with PyAV: BGR frames with presentation times, and audio-visual clips.

Frame times and the clip's audio start are seconds relative to the container's start, so a
frame and an audio sample of one file can be matched by time.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import av
import av.container
import av.video
import numpy as np

from edge.errors import EmptyMediaError, InputError, MediaDecodeError, NoVideoStreamError
from edge.features.audio import SAMPLE_RATE, decode_audio_stream
from edge.features.media import check_complete, container_start_seconds, open_media


@dataclass(frozen=True, eq=False)
class VideoFrame:
    """One decoded frame: presentation time in seconds (0 = container start) and BGR uint8 pixels."""

    pts: float
    image: np.ndarray


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.VideoStream:
    if not container.streams.video:
        raise NoVideoStreamError(f"{path}: the file has no video stream")
    return container.streams.video[0]


def _decode_frames(path: Path, every_nth: int) -> Generator[VideoFrame, None, None]:
    with open_media(path) as container:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"
        start = container_start_seconds(container)
        decoded, last_end = 0, 0.0
        try:
            for frame in container.decode(stream):
                decoded += 1
                if frame.time is None:
                    raise MediaDecodeError(f"{path}: video frame {decoded - 1} has no presentation time")
                last_end = frame.time - start + (float(frame.duration * frame.time_base) if frame.duration else 0.0)
                if (decoded - 1) % every_nth == 0:
                    yield VideoFrame(pts=frame.time - start, image=frame.to_ndarray(format="bgr24"))
        except av.error.FFmpegError as exc:
            raise MediaDecodeError(
                f"{path}: video decoding failed after {decoded} frames (truncated or corrupt file): {exc}"
            ) from exc
        if decoded == 0:
            raise EmptyMediaError(f"{path}: the video stream holds no frames")
        check_complete(path, container, stream, last_end, "video")


def iter_video_frames(path: str | Path, every_nth: int = 1) -> Generator[VideoFrame, None, None]:
    """Decode a video file lazily, yielding frames 0, every_nth, 2*every_nth, ...

    Raises MediaDecodeError (missing, unreadable, corrupt), NoVideoStreamError or EmptyMediaError
    as the frames are pulled.
    """
    if every_nth < 1:
        raise InputError(f"every_nth must be at least 1, got {every_nth}")
    return _decode_frames(Path(path), every_nth)


@dataclass(frozen=True, eq=False)
class AVClip:
    """An audio-visual file: video rate and duration, its whole audio track, and lazy frames."""

    path: Path
    fps: float
    duration: float
    audio: np.ndarray
    audio_start: float

    def frames(self, every_nth: int = 1) -> Generator[VideoFrame, None, None]:
        """The clip's frames (decoded lazily on each call)."""
        return iter_video_frames(self.path, every_nth)


def open_clip(path: str | Path, sample_rate: int = SAMPLE_RATE) -> AVClip:
    """Read a clip's stream facts and decode its audio (mono float32 at sample_rate).

    Raises MediaDecodeError, NoVideoStreamError, NoAudioStreamError or EmptyMediaError, checking
    that the first video frame decodes.
    """
    path = Path(path)
    with open_media(path) as container:
        stream = _video_stream(container, path)
        rate = stream.average_rate or stream.guessed_rate
        if not rate:
            raise MediaDecodeError(f"{path}: the video stream has no frame rate")
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            raise MediaDecodeError(f"{path}: the file does not state its duration")
        audio, audio_start = decode_audio_stream(container, path, sample_rate)
    clip = AVClip(path=path, fps=float(rate), duration=duration, audio=audio, audio_start=audio_start)
    first = clip.frames()
    next(first)
    first.close()
    return clip
