"""The one seam every capture source implements: a thread that emits frames and audio blocks stamped at capture.

Every item carries ``t``, seconds on the process's monotonic clock (``time.monotonic``) taken
when the item was captured, and its position in its stream (frame index, sample index), so the
pipeline can match faces and speech in time and measure latency from capture to publication.
Sources call ``emit`` for each item; ``emit`` never blocks for a live source (the daemon hands
it a drop-oldest queue put), so capture keeps the device's pace whatever the pipeline does.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edge.steps import step

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class CapturedFrame:
    """One BGR uint8 frame: capture time ``t`` (monotonic seconds) and its index in the source's stream.

    A source hands over either the ``image`` or a ``convert`` that makes it; the conversion then runs
    the first time ``image`` is read, on the reader's thread, so that frames the pipeline skips
    (between two detections) are never converted.
    """

    __slots__ = ("t", "index", "_image", "_convert")

    def __init__(self, t: float, index: int, image: np.ndarray | None = None, *,
                 convert: Callable[[], np.ndarray] | None = None) -> None:
        if (image is None) == (convert is None):
            raise ValueError("a captured frame needs its image or a conversion that makes it, not both")
        self.t, self.index = t, index
        self._image, self._convert = image, convert

    @property
    def image(self) -> np.ndarray:
        if self._image is None:
            assert self._convert is not None
            with step("convert to BGR"):
                self._image = self._convert()
            self._convert = None
        return self._image


@dataclass(frozen=True, eq=False)
class AudioBlock:
    """Mono float32 samples at ``sample_rate``; ``t`` is the monotonic time of the block's last sample.

    ``index`` is the stream position of the first sample (samples emitted since the source began).
    """

    t: float
    index: int
    samples: np.ndarray
    sample_rate: int

    @property
    def start_t(self) -> float:
        """Monotonic time of the block's first sample."""
        return self.t - len(self.samples) / self.sample_rate


Captured = CapturedFrame | AudioBlock
Emit = Callable[[Captured], None]


class Backoff:
    """Exponential delays between reopening attempts: initial, 2x, 4x ... up to maximum; reset on success."""

    def __init__(self, initial: float = 0.5, maximum: float = 10.0, factor: float = 2.0) -> None:
        if initial <= 0 or maximum < initial or factor < 1:
            raise ValueError(f"backoff needs 0 < initial <= maximum, factor >= 1; got {initial}, {maximum}, {factor}")
        self.initial, self.maximum, self.factor = initial, maximum, factor
        self._next = initial

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self.maximum, self._next * self.factor)
        return delay

    def reset(self) -> None:
        self._next = self.initial


class BlockCutter:
    """Cuts a stream of sample arrays of any size into blocks of exactly ``block_samples`` (the tail on flush)."""

    def __init__(self, block_samples: int) -> None:
        if block_samples < 1:
            raise ValueError(f"block_samples must be at least 1, got {block_samples}")
        self.block_samples = block_samples
        self._carry = np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray) -> list[np.ndarray]:
        buffer = np.concatenate((self._carry, np.asarray(samples, dtype=np.float32)))
        whole = len(buffer) // self.block_samples * self.block_samples
        self._carry = buffer[whole:]
        return [buffer[start : start + self.block_samples] for start in range(0, whole, self.block_samples)]

    @property
    def pending(self) -> int:
        """Samples held back until the next push completes a block."""
        return len(self._carry)

    def flush(self) -> list[np.ndarray]:
        tail, self._carry = self._carry, np.zeros(0, dtype=np.float32)
        return [tail] if len(tail) else []


class Source(ABC):
    """A capture source running on its own thread until it ends (a file) or ``stop`` is called.

    Subclasses implement ``_capture(emit)``, which checks ``stopping`` and sleeps with ``_sleep`` so
    that ``stop`` takes effect promptly. ``lossless`` sources (a file replayed as fast as possible)
    want every item processed: the daemon lets them wait for room in the queues instead of dropping.
    """

    lossless = False
    video = False
    """The source emits CapturedFrame items."""
    audio = False
    """The source emits AudioBlock items."""

    def __init__(self, name: str, clock: Clock = time.monotonic) -> None:
        self.name = name
        self.clock = clock
        self.error: BaseException | None = None
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, emit: Emit) -> None:
        """Start capturing on a new thread; every item goes to ``emit``."""
        if self._thread is not None:
            raise RuntimeError(f"source {self.name} was already started")
        self._thread = threading.Thread(target=self._run, args=(emit,), name=f"capture-{self.name}", daemon=True)
        self._thread.start()

    def _run(self, emit: Emit) -> None:
        try:
            self._capture(emit)
        except Exception as exc:  # a source that fails ends; the daemon reports it and shuts down
            log.error("source %s failed: %s", self.name, exc)
            self.error = exc

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the capture thread to end and wait for it (at most ``timeout`` seconds)."""
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the capture thread has ended (by itself or by ``stop``); True when it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped meanwhile; True when ``stop`` was called."""
        return self._stop_event.wait(max(0.0, seconds))

    def counters(self) -> dict[str, int]:
        """Health counters of this source (reopens, read failures ...), for the stats message."""
        return {}

    @abstractmethod
    def _capture(self, emit: Emit) -> None:
        """Capture until the source ends or ``stopping`` turns true."""
