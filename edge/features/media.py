"""Opening media containers with PyAV, their common time base, and the check for truncated files.

A truncated MP4 often decodes without any FFmpeg error: the header declares the full duration and
the data simply stops. ``check_complete`` compares what was decoded with what the stream declares,
so a cut file is reported instead of passing for a short take.
"""

from __future__ import annotations

from pathlib import Path

import av
import av.container
import av.stream

from edge.errors import EmptyMediaError, MediaDecodeError

# A stream may end a little before its declared duration (encoder delay, edit lists, AAC padding):
# measured on the 14 RAVDESS AV takes, decoded ends differ from the header by at most 0.021 s.
TRUNCATION_TOLERANCE_S = 0.25
TRUNCATION_TOLERANCE_FRACTION = 0.05


def check_file(path: Path) -> None:
    """MediaDecodeError when ``path`` is not a file, EmptyMediaError when it has 0 bytes (images and media alike)."""
    if not path.is_file():
        raise MediaDecodeError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise EmptyMediaError(f"{path}: the file is empty (0 bytes)")


def open_media(path: str | Path) -> av.container.InputContainer:
    """Open a media file for reading, or raise MediaDecodeError / EmptyMediaError naming it."""
    path = Path(path)
    check_file(path)
    try:
        return av.open(str(path), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:   # PyAV decodes container metadata as UTF-8
        raise MediaDecodeError(f"{path}: not a readable media file ({exc})") from exc


def container_start_seconds(container: av.container.InputContainer) -> float:
    """The container's start time in seconds (0 when it does not say); media times are relative to it."""
    if container.start_time is None:
        return 0.0
    return float(container.start_time) / av.time_base


def declared_end_seconds(container: av.container.InputContainer, stream: av.stream.Stream) -> float | None:
    """Where the stream says it ends, in seconds relative to the container start, if it says."""
    base = stream.time_base
    if stream.duration is not None and base is not None:
        start = float(stream.start_time * base) if stream.start_time is not None else 0.0
        return start + float(stream.duration * base) - container_start_seconds(container)
    if container.duration is not None:
        return float(container.duration) / av.time_base
    return None


def check_complete(
    path: Path | str, container: av.container.InputContainer, stream: av.stream.Stream, decoded_end: float, kind: str
) -> None:
    """Raise MediaDecodeError when a stream's data stops well before its declared end (a cut file)."""
    declared = declared_end_seconds(container, stream)
    if declared is None:
        return
    tolerance = max(TRUNCATION_TOLERANCE_S, TRUNCATION_TOLERANCE_FRACTION * declared)
    if decoded_end < declared - tolerance:
        raise MediaDecodeError(
            f"{path}: the {kind} stream ends at {decoded_end:.2f} s but the file declares "
            f"{declared:.2f} s (truncated or corrupt file)"
        )
