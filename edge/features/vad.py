"""Voice activity detection with webrtcvad: per-frame speech mask, padded speech segments,
silence trimming for offline clips, and a gate that passes only voiced audio of a live stream.

One rule decides what counts as speech, offline and live alike: a run of voiced VAD frames at
least ``min_speech_ms`` long is speech (shorter runs, such as webrtcvad's start-up transient or
a click, are not), and ``padding_ms`` of audio either side of it is kept with it. The trailing
part of a signal shorter than one VAD frame is never analysed and never returned as speech.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass

import numpy as np
import webrtcvad

from edge.errors import InputError
from edge.features.audio import SAMPLE_RATE, as_signal

VAD_SAMPLE_RATES = (8000, 16000, 32000, 48000)
VAD_FRAME_MS = (10, 20, 30)


@dataclass(frozen=True)
class VadParams:
    """Settings of the voice activity detector."""

    aggressiveness: int = 2
    """webrtcvad mode, 0 (keeps most) to 3 (rejects most non-speech)."""
    frame_ms: int = 30
    """Length of one VAD decision: 10, 20 or 30 ms."""
    padding_ms: int = 300
    """Audio kept before and after each speech run (rounded up to whole frames)."""
    min_speech_ms: int = 150
    """Shortest run of voiced frames that counts as speech (rounded up to whole frames)."""

    def __post_init__(self) -> None:
        for name in ("aggressiveness", "frame_ms", "padding_ms", "min_speech_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InputError(f"VadParams.{name} must be an integer, got {value!r}")
        if not 0 <= self.aggressiveness <= 3:
            raise InputError(f"VadParams.aggressiveness must be 0..3, got {self.aggressiveness}")
        if self.frame_ms not in VAD_FRAME_MS:
            raise InputError(f"VadParams.frame_ms must be one of {VAD_FRAME_MS}, got {self.frame_ms}")
        if self.padding_ms < 0:
            raise InputError(f"VadParams.padding_ms must be >= 0, got {self.padding_ms}")
        if self.min_speech_ms < 0:
            raise InputError(f"VadParams.min_speech_ms must be >= 0, got {self.min_speech_ms}")

    @property
    def padding_frames(self) -> int:
        return math.ceil(self.padding_ms / self.frame_ms)

    @property
    def min_speech_frames(self) -> int:
        return max(1, math.ceil(self.min_speech_ms / self.frame_ms))

    def frame_length(self, sample_rate: int) -> int:
        """Samples in one VAD frame at ``sample_rate`` (which must be one webrtcvad accepts)."""
        if sample_rate not in VAD_SAMPLE_RATES:
            raise InputError(f"webrtcvad needs a sample rate in {VAD_SAMPLE_RATES}, got {sample_rate} Hz")
        return sample_rate * self.frame_ms // 1000

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


DEFAULT_VAD_PARAMS = VadParams()


def _pcm16(frame: np.ndarray) -> bytes:
    """float32 samples in [-1, 1] as the 16-bit little-endian PCM bytes webrtcvad reads."""
    return np.rint(np.clip(frame, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def speech_mask(
    signal: np.ndarray, sample_rate: int = SAMPLE_RATE, params: VadParams = DEFAULT_VAD_PARAMS
) -> np.ndarray:
    """webrtcvad's raw decision for each whole frame of ``signal`` (bool array, one per frame)."""
    samples = as_signal(signal)
    frame_len = params.frame_length(sample_rate)
    vad = webrtcvad.Vad(params.aggressiveness)
    starts = range(0, len(samples) - frame_len + 1, frame_len)
    return np.array(
        [vad.is_speech(_pcm16(samples[s : s + frame_len]), sample_rate) for s in starts], dtype=bool
    )


def _speech_frame_spans(mask: np.ndarray, params: VadParams) -> list[tuple[int, int]]:
    """Padded, merged [start, end) frame spans around the voiced runs long enough to be speech."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    spans: list[tuple[int, int]] = []
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        if end - start < params.min_speech_frames:
            continue
        lo, hi = max(0, int(start) - params.padding_frames), min(len(mask), int(end) + params.padding_frames)
        if spans and lo <= spans[-1][1]:
            spans[-1] = (spans[-1][0], hi)
        else:
            spans.append((lo, hi))
    return spans


def speech_segments(
    signal: np.ndarray, sample_rate: int = SAMPLE_RATE, params: VadParams = DEFAULT_VAD_PARAMS
) -> list[tuple[float, float]]:
    """(start, end) seconds of each speech segment, padded and merged, in time order."""
    frame_s = params.frame_ms / 1000
    spans = _speech_frame_spans(speech_mask(signal, sample_rate, params), params)
    return [(lo * frame_s, hi * frame_s) for lo, hi in spans]


def trim_silence(
    signal: np.ndarray, sample_rate: int = SAMPLE_RATE, params: VadParams = DEFAULT_VAD_PARAMS
) -> np.ndarray:
    """``signal`` from the start of its first speech segment to the end of its last (padding kept).

    Silence between segments stays. A signal with no speech at all gives an empty array: the
    caller decides whether to skip the clip or fall back to the untrimmed signal.
    """
    samples = as_signal(signal)
    spans = _speech_frame_spans(speech_mask(samples, sample_rate, params), params)
    if not spans:
        return samples[:0].copy()
    frame_len = params.frame_length(sample_rate)
    return samples[spans[0][0] * frame_len : spans[-1][1] * frame_len].copy()


@dataclass(frozen=True)
class SpeechChunk:
    """Contiguous voiced audio from a StreamGate, positioned by sample index since the stream began."""

    start_sample: int
    samples: np.ndarray
    sample_rate: int

    @property
    def start(self) -> float:
        """Seconds since the first sample fed to the gate."""
        return self.start_sample / self.sample_rate

    @property
    def end(self) -> float:
        return (self.start_sample + len(self.samples)) / self.sample_rate


class StreamGate:
    """Pass only the speech of a live stream, by the same rule as ``speech_segments``.

    Feed float32 blocks of any size; each call returns the voiced audio that became certain with
    that block. Audio before a speech run is held back (``padding_ms``) and released once the run
    is ``min_speech_ms`` long; after a run the gate stays open for ``padding_ms`` (hangover). The
    concatenated output for a stream equals what ``speech_segments`` selects on the whole signal,
    whatever the block sizes.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, params: VadParams = DEFAULT_VAD_PARAMS) -> None:
        self.sample_rate = sample_rate
        self.params = params
        self._frame_len = self.params.frame_length(self.sample_rate)
        self._vad = webrtcvad.Vad(self.params.aggressiveness)
        self._carry = np.zeros(0, dtype=np.float32)
        self._next_frame = 0
        self._run = 0
        self._last_speech_frame: int | None = None
        self._held: deque[tuple[int, np.ndarray]] = deque()

    def feed(self, block: np.ndarray) -> list[SpeechChunk]:
        """Consume a block of samples; return the voiced chunks it completed (often none)."""
        buffer = np.concatenate((self._carry, as_signal(block)))
        n_frames = len(buffer) // self._frame_len
        released: list[tuple[int, np.ndarray]] = []
        for k in range(n_frames):
            released.extend(self._step(buffer[k * self._frame_len : (k + 1) * self._frame_len]))
        self._carry = buffer[n_frames * self._frame_len :].copy()
        return self._chunks(released)

    def _step(self, frame: np.ndarray) -> list[tuple[int, np.ndarray]]:
        index = self._next_frame
        self._next_frame += 1
        self._run = self._run + 1 if self._vad.is_speech(_pcm16(frame), self.sample_rate) else 0
        self._held.append((index, frame))
        if self._run >= self.params.min_speech_frames:
            self._last_speech_frame = index
        elif self._last_speech_frame is None or index - self._last_speech_frame > self.params.padding_frames:
            while len(self._held) > self.params.padding_frames + self._run:
                self._held.popleft()
            return []
        released = list(self._held)
        self._held.clear()
        return released

    def _chunks(self, frames: list[tuple[int, np.ndarray]]) -> list[SpeechChunk]:
        chunks: list[SpeechChunk] = []
        group: list[np.ndarray] = []
        for i, (index, frame) in enumerate(frames):
            group.append(frame)
            if i + 1 == len(frames) or frames[i + 1][0] != index + 1:
                first = index - len(group) + 1
                chunks.append(SpeechChunk(first * self._frame_len, np.concatenate(group), self.sample_rate))
                group = []
        return chunks
