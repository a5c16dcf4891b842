"""Capture sources by URI: cameras (V4L2, CSI, GStreamer), microphones (sounddevice) and file replay (PyAV).

``open_sources`` turns the configured video URI and microphone into ``Source`` objects; every
source runs its own capture thread and stamps items on the monotonic clock (``source.py``) and
hands them to bounded drop-oldest queues (``queues.py``), the seam to the pipeline's stages.
"""

from __future__ import annotations

from pathlib import Path

from edge.capture.camera import CameraSource, opencv_opener
from edge.capture.file_replay import FileReplaySource
from edge.capture.microphone import MicrophoneSource
from edge.capture.source import Source
from edge.config.schema import SourceConfig
from edge.errors import InputError

FILE_SCHEME = "file://"


def file_uri_path(uri: str) -> Path:
    """``file:///abs/clip.mp4`` -> /abs/clip.mp4; ``file://clip.mp4`` -> clip.mp4 (relative to the working dir)."""
    return Path(uri[len(FILE_SCHEME) :])


def replay_path(video: str) -> Path | None:
    """The file a video setting names: a ``file://`` URI, or a plain path of an existing file; else None."""
    if video.startswith(FILE_SCHEME):
        return file_uri_path(video)
    if "://" not in video and Path(video).is_file():
        return Path(video)
    return None


def open_sources(settings: SourceConfig) -> list[Source]:
    """The sources ``[source]`` names: a video setting (camera URI, ``file://`` URI or file path) and a
    microphone (name, index or ``default``)."""
    video, audio = settings.video, settings.audio
    sources: list[Source] = []
    if video is not None:
        path = replay_path(video)
        if path is not None:
            sources.append(FileReplaySource(path, realtime=settings.realtime, loop=settings.loop,
                                            decoder_threads=settings.decoder_threads))
        else:
            sources.append(CameraSource(opencv_opener(video), name=video))
    if audio is not None:
        if any(source.audio for source in sources):
            raise InputError(
                f"source.audio = {audio!r}: the file {video} brings its own audio track; unset source.audio"
            )
        sources.append(MicrophoneSource(audio))
    if not sources:
        raise InputError("no source: set source.video (a camera or file:// URI) and/or source.audio (a microphone)")
    return sources
