"""File replay (``file://clip.mp4``): a media file's video and audio decoded together with PyAV, as if live.

Frames and 16 kHz mono audio blocks come out in presentation order (an audio block counts at
its last sample, when a microphone would have delivered it), either paced against the monotonic
clock so that the replay takes as long as the clip, or as fast as the pipeline takes them. With
``loop`` the file starts again at its end; frame and sample indices keep counting. Audio is
down-mixed and resampled exactly as ``edge.features.audio`` does for training (swresample to the
target rate, channels averaged). A file whose streams stop well before their declared ends (a cut
or damaged file, which FFmpeg often decodes without an error) raises ``MediaDecodeError`` at the
end of the first pass, as ``classify`` does, instead of passing for a short take.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import av.audio.frame
import numpy as np

from edge.capture.source import AudioBlock, BlockCutter, CapturedFrame, Clock, Emit, Source
from edge.errors import EmptyMediaError, MediaDecodeError
from edge.features.audio import SAMPLE_RATE
from edge.features.media import check_complete, container_start_seconds, open_media
from edge.steps import step

# Streams of a file are interleaved in chunks (RAVDESS mp4: 0.3 s). An item is released once the
# other stream has been decoded past it, or once its own stream has run this far ahead (the other
# stream ended early or is sparse), which bounds how much decoded video is held.
MAX_INTERLEAVE_S = 1.0


@dataclass(frozen=True)
class _Timed:
    """A decoded item at its media time (seconds from the container start, this pass of the file)."""

    media_t: float
    kind: str
    payload: np.ndarray | Callable[[], np.ndarray]
    """Audio: the block's samples; video: the conversion that makes the BGR frame (run only if it is read)."""


class FileReplaySource(Source):
    """Replays a file's video frames and audio blocks in presentation order (see the module docstring)."""

    def __init__(
        self,
        path: str | Path,
        realtime: bool = True,
        loop: bool = False,
        block_ms: int = 20,
        sample_rate: int = SAMPLE_RATE,
        clock: Clock = time.monotonic,
        decoder_threads: int = 0,
    ) -> None:
        super().__init__(f"file:{Path(path).name}", clock)
        self.path = Path(path)
        self.realtime = realtime
        self.loop = loop
        self.lossless = not realtime
        self.sample_rate = sample_rate
        self.block_samples = sample_rate * block_ms // 1000
        self.decoder_threads = decoder_threads
        self.passes = 0
        self.origin: float | None = None
        """Clock time of media time 0 of the first pass, once the first item is ready (replays map stamps back)."""
        with open_media(self.path) as container:
            self.video, self.audio = bool(container.streams.video), bool(container.streams.audio)
        if not self.video and not self.audio:
            raise MediaDecodeError(f"{self.path}: the file has neither video nor audio")

    def _decode_pass(self) -> Iterator[_Timed]:
        """One pass over the file: frames and audio blocks in the order they were decoded."""
        with open_media(self.path) as container:
            streams = [*container.streams.video[:1], *container.streams.audio[:1]]
            for stream in streams:
                if self.decoder_threads == 0:
                    stream.thread_type = "AUTO"
                else:
                    stream.thread_count = self.decoder_threads
            start = container_start_seconds(container)
            resampler = av.AudioResampler(format="fltp", rate=self.sample_rate)
            cutter = BlockCutter(self.block_samples)
            audio_start: float | None = None
            audio_samples = 0
            decoded_end = dict.fromkeys(streams, 0.0)

            def blocks(chunks: list[np.ndarray]) -> Iterator[_Timed]:
                nonlocal audio_samples
                assert audio_start is not None
                for block in chunks:
                    audio_samples += len(block)
                    yield _Timed(audio_start + audio_samples / self.sample_rate, "audio", block)

            try:
                decoded = container.decode(*streams)
                while True:
                    with step("decode"):
                        frame = next(decoded, None)
                    if frame is None:
                        break
                    if frame.time is None:
                        raise MediaDecodeError(f"{self.path}: a decoded frame has no presentation time")
                    duration = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else 0.0
                    for stream in streams:
                        if stream.type == ("audio" if isinstance(frame, av.audio.frame.AudioFrame) else "video"):
                            decoded_end[stream] = max(decoded_end[stream], frame.time - start + duration)
                    if isinstance(frame, av.audio.frame.AudioFrame):
                        if audio_start is None:
                            audio_start = frame.time - start
                        with step("resample audio"):
                            chunks = [block for out in resampler.resample(frame)
                                      for block in cutter.push(out.to_ndarray().mean(axis=0))]
                        yield from blocks(chunks)
                    else:
                        yield _Timed(frame.time - start, "video", functools.partial(frame.to_ndarray, format="bgr24"))
                if audio_start is not None:
                    for out in resampler.resample(None):
                        yield from blocks(cutter.push(out.to_ndarray().mean(axis=0)))
                    yield from blocks(cutter.flush())
            except av.error.FFmpegError as exc:
                raise MediaDecodeError(f"{self.path}: decoding failed (truncated or corrupt file): {exc}") from exc
            for stream, end in decoded_end.items():
                check_complete(self.path, container, stream, end, stream.type)

    def _ordered_pass(self) -> Iterator[_Timed]:
        """One pass in presentation order: the decoded items of both streams merged by media time."""
        pending: dict[str, deque[_Timed]] = {"video": deque(), "audio": deque()}
        newest = {"video": float("-inf"), "audio": float("-inf")}

        def ready() -> Iterator[_Timed]:
            while True:
                heads = [queue[0] for queue in pending.values() if queue]
                if not heads:
                    return
                head = min(heads, key=lambda item: item.media_t)
                other = "audio" if head.kind == "video" else "video"
                if head.media_t > newest[other] and head.media_t + MAX_INTERLEAVE_S > newest[head.kind]:
                    return
                yield pending[head.kind].popleft()

        count = 0
        for item in self._decode_pass():
            count += 1
            pending[item.kind].append(item)
            newest[item.kind] = max(newest[item.kind], item.media_t)
            yield from ready()
        if count == 0:
            raise EmptyMediaError(f"{self.path}: the file holds no frames and no audio")
        newest = {"video": float("inf"), "audio": float("inf")}
        yield from ready()

    def items(self) -> Iterator[AudioBlock | CapturedFrame]:
        """Stamped items, paced when ``realtime``, until the file ends (never, with ``loop``) or ``stop``."""
        frame_index = sample_index = 0
        offset = 0.0
        origin: float | None = None  # monotonic time of media time 0, set when the first item is ready
        while not self.stopping:
            end = 0.0
            for item in self._ordered_pass():
                if origin is None:
                    origin = self.origin = self.clock() - item.media_t
                if self.realtime and self._sleep(origin + offset + item.media_t - self.clock()):
                    return
                if self.stopping:
                    return
                end = max(end, item.media_t)
                if item.kind == "video":
                    assert callable(item.payload)
                    yield CapturedFrame(t=self.clock(), index=frame_index, convert=item.payload)
                    frame_index += 1
                else:
                    assert isinstance(item.payload, np.ndarray)
                    yield AudioBlock(t=self.clock(), index=sample_index, samples=item.payload,
                                     sample_rate=self.sample_rate)
                    sample_index += len(item.payload)
            self.passes += 1
            if not self.loop:
                return
            offset += end

    def _capture(self, emit: Emit) -> None:
        for item in self.items():
            emit(item)

    def counters(self) -> dict[str, int]:
        return {"passes": self.passes}
