"""The speech stage: VAD-gated audio into 1 s MFCC windows (hop 0.5 s) and the speech CNN over them.

``SpeechWindower`` keeps the voiced audio of the current speech segment (what ``StreamGate``
passes) in a buffer: each time it holds a whole window, the window is cut and the buffer advances
by one hop. A segment ends when the gate has judged audio past it without passing it; a segment
that ended before filling one window becomes one zero-padded window, as ``mfcc_windows`` does
offline, so the device and the offline classifier cut speech the same way.
``SpeechStage`` turns the windows into MFCCs (``edge.features.mfcc``), runs the speech CNN once
over all windows that are ready and stamps each posterior (with the window's embedding, for a
fusion head) with the capture time of the window's last sample.
"""

from __future__ import annotations

import time

import numpy as np

from edge.capture.queues import DropOldestQueue
from edge.capture.source import AudioBlock
from edge.features.mfcc import MfccParams, mfcc_windows
from edge.features.vad import StreamGate, VadParams
from edge.fusion.decision import softmax, to_emotions
from edge.pipeline.messages import Posterior, TrackChanges
from edge.pipeline.stage import Stage
from edge.pipeline.stats import PeriodPercentiles
from edge.runtime.backend import Backend
from edge.steps import step


class SpeechWindower:
    """Voiced audio in, model windows out: ``(samples, end)`` with ``end`` the stream sample after the window."""

    def __init__(self, mfcc: MfccParams, vad: VadParams) -> None:
        self.mfcc = mfcc
        self.gate = StreamGate(mfcc.sample_rate, vad)
        self._frame = vad.frame_length(mfcc.sample_rate)
        self._fed = 0
        self._buffer = np.zeros(0, dtype=np.float32)
        self._segment_end: int | None = None
        self._segment_windows = 0

    @property
    def fed(self) -> int:
        """Samples fed so far (the stream position after the last block)."""
        return self._fed

    @property
    def in_speech(self) -> bool:
        """A speech segment is open."""
        return self._segment_end is not None

    def feed(self, block: np.ndarray) -> list[tuple[np.ndarray, int]]:
        self._fed += len(block)
        out: list[tuple[np.ndarray, int]] = []
        for chunk in self.gate.feed(block):
            if self._segment_end is not None and chunk.start_sample != self._segment_end:
                out.extend(self._close())
            self._buffer = np.concatenate((self._buffer, chunk.samples))
            self._segment_end = chunk.start_sample + len(chunk.samples)
            out.extend(self._whole_windows())
        judged = self._fed // self._frame * self._frame
        if self._segment_end is not None and judged > self._segment_end:
            out.extend(self._close())
        return out

    def flush(self) -> list[tuple[np.ndarray, int]]:
        """End of the stream: close the open segment."""
        return self._close() if self._segment_end is not None else []

    def _whole_windows(self) -> list[tuple[np.ndarray, int]]:
        assert self._segment_end is not None
        size, hop = self.mfcc.window_samples, self.mfcc.hop_samples
        out = []
        while len(self._buffer) >= size:
            out.append((self._buffer[:size].copy(), self._segment_end - (len(self._buffer) - size)))
            self._buffer = self._buffer[hop:]
            self._segment_windows += 1
        return out

    def _close(self) -> list[tuple[np.ndarray, int]]:
        assert self._segment_end is not None
        out = [] if self._segment_windows or not len(self._buffer) else [(self._buffer.copy(), self._segment_end)]
        self._buffer = np.zeros(0, dtype=np.float32)
        self._segment_end, self._segment_windows = None, 0
        return out


class SpeechStage(Stage[AudioBlock]):
    """Audio blocks in; speech posteriors (no track) to ``posteriors``."""

    def __init__(self, audio: DropOldestQueue[AudioBlock], posteriors: DropOldestQueue[TrackChanges | Posterior],
                 model: Backend, mfcc: MfccParams, vad: VadParams) -> None:
        super().__init__("speech", audio)
        self.posteriors, self.model, self.mfcc = posteriors, model, mfcc
        self.windower = SpeechWindower(mfcc, vad)
        self.inference_ms = PeriodPercentiles()
        self._last_t = 0.0

    @property
    def speech_active(self) -> bool:
        return self.windower.in_speech

    def _time_of(self, sample: int) -> float:
        """Capture time of stream sample ``sample``, counted back from the newest block (drops ignored)."""
        return self._last_t - (self.windower.fed - sample) / self.mfcc.sample_rate

    def process(self, batch: list[AudioBlock]) -> None:
        windows: list[tuple[np.ndarray, float]] = []
        for block in batch:
            if block.sample_rate != self.mfcc.sample_rate:
                raise ValueError(f"audio at {block.sample_rate} Hz; the speech model takes {self.mfcc.sample_rate}")
            self._last_t = block.t
            with step("VAD"):
                ready = self.windower.feed(block.samples)
            windows.extend((samples, self._time_of(end)) for samples, end in ready)
        self._classify(windows)

    def finish(self) -> None:
        self._classify([(samples, self._time_of(end)) for samples, end in self.windower.flush()])

    def _classify(self, windows: list[tuple[np.ndarray, float]]) -> None:
        if not windows:
            return
        with step("MFCC"):
            features = np.concatenate([mfcc_windows(samples, self.mfcc) for samples, _ in windows])
        started = time.perf_counter()
        with step("speech CNN"):
            outputs = self.model.run(features)
        self.inference_ms.add((time.perf_counter() - started) * 1000)
        probabilities = to_emotions(softmax(outputs["logits"]), self.model.sidecar.labels)
        embeddings = outputs.get("embedding", [None] * len(windows))
        for (_, t), p, embedding in zip(windows, probabilities, embeddings, strict=True):
            self.posteriors.put(Posterior("speech", None, p, t, embedding))
