"""The microphone source through real sounddevice/PortAudio, fed by a real PulseAudio server.

The fixture starts a private ``pulseaudio`` (apt package; ``script/setup dev`` installs it with
``libasound2-plugins``, PortAudio's route to it through ALSA's ``pulse`` device) whose only
source is ``module-pipe-source``: a FIFO this test writes 16-bit PCM into, in real time, like a
microphone. The RAVDESS fixture's speech goes in and must come out of ``MicrophoneSource``.
Killing and restarting the server checks that a failed stream is reopened and recording resumes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edge.capture.microphone import MicrophoneSource, StreamResampler
from edge.capture.source import AudioBlock, Backoff, Captured
from edge.features.audio import load_audio

RATE = 16000
BLOCK = 320  # 20 ms


class PulseMicrophone:
    """A private PulseAudio server with a FIFO-fed source, and a thread writing PCM to it in real time."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.fifo = directory / "mic.fifo"
        self.socket = directory / "native"
        self._pending = np.zeros(0, dtype=np.float32)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._writer = threading.Thread(target=self._write, daemon=True)

    def start(self) -> None:
        binary = shutil.which("pulseaudio")
        if binary is None:
            pytest.fail("pulseaudio is not installed: run `script/setup dev` (apt: pulseaudio, libasound2-plugins)")
        self.fifo.unlink(missing_ok=True)
        env = {**os.environ, "HOME": str(self.directory), "PULSE_RUNTIME_PATH": str(self.directory / "run")}
        self._process = subprocess.Popen(
            [binary, "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no", "--log-level=error",
             "-L", f"module-native-protocol-unix socket={self.socket} auth-anonymous=1",
             "-L", f"module-pipe-source source_name=fixture file={self.fifo} format=s16le rate={RATE} channels=1"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not (self.fifo.exists() and self.socket.exists()):
            if self._process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"pulseaudio did not start (exit status {self._process.poll()})")
            time.sleep(0.02)
        if not self._writer.is_alive():
            self._writer.start()

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def close(self) -> None:
        self._stop.set()
        self._writer.join(2)
        self.kill()

    def say(self, samples: np.ndarray) -> None:
        """Queue ``samples`` to be 'spoken' into the microphone (silence is written otherwise)."""
        with self._lock:
            self._pending = np.concatenate((self._pending, samples.astype(np.float32)))

    def _write(self) -> None:
        fd: int | None = None
        next_at = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                block, self._pending = self._pending[:BLOCK], self._pending[BLOCK:]
            block = np.pad(block, (0, BLOCK - len(block)))
            try:
                if fd is None:
                    fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
                os.write(fd, np.rint(np.clip(block, -1, 1) * 32767).astype("<i2").tobytes())
            except OSError:  # no reader (server restarting) or a full pipe: this block is lost, as on a real line
                if fd is not None:
                    os.close(fd)
                fd = None
            next_at += BLOCK / RATE
            time.sleep(max(0.0, next_at - time.monotonic()))
        if fd is not None:
            os.close(fd)


@pytest.fixture
def pulse_microphone(monkeypatch: pytest.MonkeyPatch) -> Iterator[PulseMicrophone]:
    directory = Path(tempfile.mkdtemp(prefix="pa-"))  # short: unix socket paths are limited to 107 bytes
    microphone = PulseMicrophone(directory)
    monkeypatch.setenv("PULSE_SERVER", f"unix:{microphone.socket}")
    monkeypatch.setenv("PULSE_SOURCE", "fixture")
    microphone.start()
    try:
        yield microphone
    finally:
        microphone.close()
        shutil.rmtree(directory, ignore_errors=True)


class Recorder:
    """Collects a source's blocks and waits until enough audio came in."""

    def __init__(self) -> None:
        self.blocks: list[AudioBlock] = []
        self._changed = threading.Condition()

    def __call__(self, block: Captured) -> None:
        assert isinstance(block, AudioBlock)
        with self._changed:
            self.blocks.append(block)
            self._changed.notify_all()

    def wait_seconds(self, seconds: float, timeout: float) -> None:
        with self._changed:
            ok = self._changed.wait_for(lambda: len(self.blocks) * BLOCK >= seconds * RATE, timeout)
        assert ok, f"only {len(self.blocks) * BLOCK / RATE:.2f} s of audio recorded in {timeout} s"

    def signal(self, since: int = 0) -> np.ndarray:
        with self._changed:
            return np.concatenate([block.samples for block in self.blocks[since:]])


def best_match(recorded: np.ndarray, spoken: np.ndarray) -> float:
    """Correlation coefficient of ``spoken`` with the part of ``recorded`` where it fits best."""
    lag = int(np.argmax(np.correlate(recorded, spoken, mode="valid")))
    return float(np.corrcoef(recorded[lag : lag + len(spoken)], spoken)[0, 1])


@pytest.fixture(scope="module")
def speech(speech_flac: Path) -> np.ndarray:
    return load_audio(speech_flac)[16000:36000]  # 1.25 s of the take's voiced middle


def test_the_microphone_records_what_is_spoken_into_it(pulse_microphone: PulseMicrophone, speech: np.ndarray) -> None:
    recorder = Recorder()
    source = MicrophoneSource("pulse", backoff=Backoff(0.05, 0.2))
    source.start(recorder)
    try:
        recorder.wait_seconds(0.3, timeout=10)
        pulse_microphone.say(speech)
        recorder.wait_seconds(0.3 + len(speech) / RATE + 0.5, timeout=10)
    finally:
        source.stop()
    recorded = recorder.signal()
    assert best_match(recorded, speech) > 0.999  # bit-exact but for 16-bit quantisation
    blocks = recorder.blocks
    assert {len(b.samples) for b in blocks} == {BLOCK} and {b.sample_rate for b in blocks} == {RATE}
    assert [b.index for b in blocks] == [k * BLOCK for k in range(len(blocks))]
    stamps = np.array([b.t for b in blocks])
    assert np.all(np.diff(stamps) >= 0)
    assert source.counters()["callback_drops"] == 0


def test_a_failed_stream_is_reopened_and_recording_resumes(
    pulse_microphone: PulseMicrophone, speech: np.ndarray
) -> None:
    recorder = Recorder()
    source = MicrophoneSource("pulse", stall_s=0.3, backoff=Backoff(0.05, 0.2))
    source.start(recorder)
    try:
        recorder.wait_seconds(0.3, timeout=10)
        pulse_microphone.kill()  # the sound server (or a USB microphone) goes away
        time.sleep(0.8)
        pulse_microphone.start()
        deadline = time.monotonic() + 10
        while source.counters()["reopens"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        before = len(recorder.blocks)
        recorder.wait_seconds(before * BLOCK / RATE + 0.2, timeout=10)  # recording again
        pulse_microphone.say(speech)
        recorder.wait_seconds((before * BLOCK + len(speech)) / RATE + 0.5, timeout=15)
    finally:
        source.stop()
    assert source.counters()["reopens"] >= 1
    assert best_match(recorder.signal(before), speech) > 0.999
    assert source.error is None


def test_the_stream_resampler_carries_its_state_across_blocks(av_clip: Path) -> None:
    """48 kHz audio converted in 20 ms blocks equals the one-shot conversion (no clicks at block edges)."""
    native = load_audio(av_clip, 48000)
    stream = StreamResampler(48000, RATE)
    blockwise = np.concatenate([stream(native[k : k + 960]) for k in range(0, len(native), 960)])
    oneshot = StreamResampler(48000, RATE)(native)
    assert abs(len(blockwise) - len(native) / 3) < 64  # swresample holds back only its filter's delay
    np.testing.assert_allclose(blockwise, oneshot[: len(blockwise)], atol=1e-5)
    # and it is the same conversion the file decoder uses for training audio
    reference = load_audio(av_clip, RATE)
    voiced = slice(16000, 16000 + 16000)
    assert best_match(blockwise[8000:40000], reference[voiced]) > 0.99
