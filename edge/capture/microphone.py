"""Microphones through sounddevice (PortAudio): 16 kHz mono blocks, the stream reopened when it fails.

The device is chosen by index, by (part of) its name, or ``default``. When it cannot record
16 kHz mono, it records at its default rate and PyAV's swresample converts the stream to 16 kHz:
a streaming resampler whose filter state carries across blocks (resampling each block on its own
would put clicks at every block edge). PortAudio's callback only stamps and queues the samples
(bounded, drop oldest, counted); the capture thread resamples, cuts 20 ms blocks and emits them.
A stream that stops, fails or delivers nothing for ``stall_s`` seconds is logged and reopened with
exponential backoff, after refreshing
PortAudio's device list (``sd._terminate()``/``sd._initialize()``, the way sounddevice's
maintainer recommends, since PortAudio only enumerates devices when it starts) so that a USB
microphone plugged back in or a restarted sound server is found again.

sounddevice loads the PortAudio library when it is imported, so it is imported only when a
microphone is used (``sounddevice()``): every other source and command works without PortAudio.
"""

from __future__ import annotations

import logging
import time
from types import ModuleType
from typing import TYPE_CHECKING, Any

import av
import numpy as np

from edge.capture.queues import DropOldestQueue
from edge.capture.source import AudioBlock, Backoff, BlockCutter, Clock, Emit, Source
from edge.errors import InputError
from edge.features.audio import SAMPLE_RATE

if TYPE_CHECKING:
    import sounddevice as sd

log = logging.getLogger(__name__)
PORTAUDIO_HINT = "install PortAudio: sudo apt-get install libportaudio2 (Debian, Ubuntu, JetPack)"


def sounddevice() -> ModuleType:
    """The sounddevice module, or ``InputError`` saying what to install when PortAudio is missing."""
    try:
        import sounddevice as sd
    except OSError as err:   # sounddevice raises OSError("PortAudio library not found") at import
        raise InputError(f"microphones need the PortAudio library ({err}): {PORTAUDIO_HINT}") from None
    return sd


def input_device(spec: str | int | None) -> int | None:
    """PortAudio's index of the input device ``spec`` (index, name part, ``default``/None: the default)."""
    if spec is None or spec == "default":
        return None
    if isinstance(spec, str) and spec.isdigit():
        spec = int(spec)
    sd = sounddevice()
    try:
        info: Any = sd.query_devices(spec)
    except (ValueError, sd.PortAudioError) as exc:
        raise InputError(f"microphone {spec!r}: {exc}") from exc
    if info["max_input_channels"] < 1:
        raise InputError(f"microphone {spec!r}: device {info['name']!r} has no input channels")
    return int(info["index"])


def capture_rate(device: int | None, wanted: int) -> int:
    """``wanted`` when the device records it in mono float32, else the device's default rate."""
    sd = sounddevice()
    try:
        sd.check_input_settings(device, samplerate=wanted, channels=1, dtype="float32")
        return wanted
    except (ValueError, sd.PortAudioError):
        return int(sd.query_devices(device, "input")["default_samplerate"])


def refresh_devices() -> None:
    """Make PortAudio enumerate the devices again (it closes every open stream)."""
    sd = sounddevice()
    sd._terminate()
    sd._initialize()


class StreamResampler:
    """Streaming mono float32 conversion from ``rate`` to ``target`` (identity when they are equal)."""

    def __init__(self, rate: int, target: int) -> None:
        self.rate = rate
        self._resampler = None if rate == target else av.AudioResampler(format="flt", layout="mono", rate=target)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        if self._resampler is None:
            return samples
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
        frame.sample_rate = self.rate
        out = [chunk.to_ndarray()[0] for chunk in self._resampler.resample(frame)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


class MicrophoneSource(Source):
    """16 kHz mono ``AudioBlock`` items from a sounddevice input stream (see the module docstring).

    Counters: ``callback_drops`` (raw chunks dropped because the capture thread fell behind),
    ``overflows`` (PortAudio reported lost input), ``reopens`` and ``open_failures``.
    """

    audio = True

    def __init__(
        self,
        device: str | int | None = None,
        sample_rate: int = SAMPLE_RATE,
        block_ms: int = 20,
        queue_blocks: int = 100,
        stall_s: float = 2.0,
        backoff: Backoff | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(f"mic:{device if device is not None else 'default'}", clock)
        sounddevice()   # no PortAudio: fail at start, saying what to install
        self.device = device
        self.sample_rate = sample_rate
        self.block_samples = sample_rate * block_ms // 1000
        self.stall_s = stall_s
        self.backoff = backoff or Backoff()
        self._raw: DropOldestQueue[tuple[float, np.ndarray]] = DropOldestQueue("microphone", queue_blocks)
        self._counts = {"overflows": 0, "opens": 0, "open_failures": 0}

    def callback(self, indata: np.ndarray, frames: int, time_info: Any, status: sd.CallbackFlags) -> None:
        """PortAudio's callback: stamp the chunk (time of its last sample) and queue a copy; never blocks."""
        stamp = self.clock()
        if status.input_overflow:
            self._counts["overflows"] += 1
        self._raw.put((stamp, np.array(indata[:, 0], dtype=np.float32)))

    def _open(self) -> tuple[sd.InputStream, StreamResampler] | None:
        """A started input stream and its resampler, retrying with backoff; None when stopped meanwhile."""
        sd = sounddevice()
        attempt = 0
        while not self.stopping:
            if attempt:
                refresh_devices()
            attempt += 1
            try:
                device = input_device(self.device)
                rate = capture_rate(device, self.sample_rate)
                stream = sd.InputStream(
                    device=device, samplerate=rate, channels=1, dtype="float32",
                    blocksize=rate * self.block_samples // self.sample_rate, callback=self.callback,
                )
                stream.start()
                self._counts["opens"] += 1
                log.info("microphone %s: recording at %d Hz", self.name, rate)
                return stream, StreamResampler(rate, self.sample_rate)
            except (InputError, sd.PortAudioError, ValueError) as exc:
                self._counts["open_failures"] += 1
                delay = self.backoff.next_delay()
                log.warning("microphone %s: %s; retrying in %.1f s", self.name, exc, delay)
                self._sleep(delay)
        return None

    def _capture(self, emit: Emit) -> None:
        index = 0
        while not self.stopping:
            opened = self._open()
            if opened is None:
                return
            stream, resample = opened
            cutter = BlockCutter(self.block_samples)
            last_data = self.clock()
            try:
                while not self.stopping:
                    batch = self._raw.get_batch(timeout=0.2)
                    if batch:
                        last_data = self.clock()
                    for stamp, chunk in batch:
                        blocks = cutter.push(resample(chunk))
                        later = cutter.pending + self.block_samples * len(blocks)
                        for block in blocks:
                            later -= len(block)
                            emit(AudioBlock(stamp - later / self.sample_rate, index, block, self.sample_rate))
                            index += len(block)
                            self.backoff.reset()
                    if not stream.active or self.clock() - last_data > self.stall_s:
                        log.warning("microphone %s: the stream stopped delivering audio; reopening", self.name)
                        break
            finally:
                stream.close(ignore_errors=True)
            if not self.stopping:
                self._sleep(self.backoff.next_delay())

    def counters(self) -> dict[str, int]:
        return {"callback_drops": self._raw.dropped, "overflows": self._counts["overflows"],
                "reopens": max(0, self._counts["opens"] - 1), "open_failures": self._counts["open_failures"]}
