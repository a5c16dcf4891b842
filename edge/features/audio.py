"""Audio decoding: any file PyAV reads (wav, flac, mp3, the audio track of mp4/mkv) to float32 mono.

Decoding and resampling are done by PyAV (FFmpeg); channels are averaged to mono, the same
down-mix that produced the 16 kHz RAVDESS FLAC files the speech model is trained on, so a
stereo track stays within [-1, 1]. Level normalisers used before MFCC extraction live here too.
"""

from __future__ import annotations

from pathlib import Path

import av
import av.container
import numpy as np

from edge.errors import EmptyMediaError, InputError, MediaDecodeError, NoAudioStreamError
from edge.features.media import check_complete, container_start_seconds, open_media

SAMPLE_RATE = 16000


def decode_audio_stream(
    container: av.container.InputContainer, path: str | Path, sample_rate: int = SAMPLE_RATE
) -> tuple[np.ndarray, float]:
    """Decode the first audio stream of an open container to float32 mono at ``sample_rate``.

    Returns the samples and the time in seconds of the first sample, relative to the container's
    start, so audio and video frames of one file share a time base. A stream that fails to decode
    part-way, or whose data stops well before its declared end (a truncated or corrupt file), raises
    MediaDecodeError rather than returning a prefix.
    """
    if not isinstance(sample_rate, int) or sample_rate <= 0:
        raise InputError(f"{path}: sample_rate must be a positive integer, got {sample_rate!r}")
    if not container.streams.audio:
        raise NoAudioStreamError(f"{path}: the file has no audio stream")
    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="fltp", rate=sample_rate)
    chunks: list[np.ndarray] = []
    first_time: float | None = None
    decoded = 0
    try:
        for frame in container.decode(stream):
            if first_time is None and frame.time is not None:
                first_time = frame.time
            decoded += frame.samples
            chunks.extend(out.to_ndarray().mean(axis=0) for out in resampler.resample(frame))
        chunks.extend(out.to_ndarray().mean(axis=0) for out in resampler.resample(None))
    except av.error.FFmpegError as exc:
        seconds = decoded / stream.rate if stream.rate else 0.0
        raise MediaDecodeError(
            f"{path}: audio decoding failed after {seconds:.2f} s (truncated or corrupt file): {exc}"
        ) from exc
    if not chunks:
        raise EmptyMediaError(f"{path}: the audio stream holds no samples")
    if first_time is None:
        start, base = stream.start_time, stream.time_base
        first_time = float(start * base) if start is not None and base is not None else 0.0
    samples = np.concatenate(chunks).astype(np.float32, copy=False)
    offset = first_time - container_start_seconds(container)
    check_complete(path, container, stream, offset + samples.size / sample_rate, "audio")
    return samples, offset


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode a media file's first audio stream to float32 mono samples at ``sample_rate``."""
    with open_media(path) as container:
        samples, _ = decode_audio_stream(container, path, sample_rate)
    return samples


def as_signal(signal: np.ndarray) -> np.ndarray:
    """Return ``signal`` as a 1-D float32 array, or raise InputError for anything else."""
    array = np.asarray(signal)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.floating):
        raise InputError(
            f"expected a 1-D float mono signal, got an array of shape {array.shape} and dtype {array.dtype}"
        )
    return array.astype(np.float32, copy=False)


def _scale_to_level(signal: np.ndarray, level: float, target: float, floor: float) -> np.ndarray:
    """Scale so that ``level`` becomes ``target``; levels below ``floor`` get the gain of ``floor``."""
    return (signal * (target / max(level, floor))).astype(np.float32)


def peak_normalise(signal: np.ndarray, peak: float = 0.9, floor: float = 1e-3) -> np.ndarray:
    """Scale ``signal`` so that its largest absolute sample is ``peak``.

    A signal whose peak is below ``floor`` gets the gain of a signal at ``floor``, so digital
    silence stays silent and faint noise is not blown up to full scale.
    """
    level = float(np.max(np.abs(signal))) if signal.size else 0.0
    return _scale_to_level(signal, level, peak, floor)


def rms_normalise(signal: np.ndarray, target_dbfs: float = -20.0, floor_dbfs: float = -60.0) -> np.ndarray:
    """Scale ``signal`` so that its RMS level is ``target_dbfs`` (dB relative to full scale).

    A signal quieter than ``floor_dbfs`` gets the gain of a signal at ``floor_dbfs``.
    """
    level = float(np.sqrt(np.mean(np.square(signal, dtype=np.float64)))) if signal.size else 0.0
    return _scale_to_level(signal, level, 10.0 ** (target_dbfs / 20.0), 10.0 ** (floor_dbfs / 20.0))
