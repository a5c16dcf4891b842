"""Faults that must not look like success (docs/reliability.md): damaged files, bad broker URLs, models in the
wrong slot or with sidecars that do not fit, a dead camera, payloads never delivered, overload, signals at
start-up, and the short soak."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT
from mosquitto import free_port

from edge.app.cli import build_parser, run_config
from edge.app.daemon import PAYLOADS_LOST, Daemon
from edge.capture.camera import CameraSource
from edge.capture.file_replay import FileReplaySource
from edge.capture.source import Backoff
from edge.config.loader import apply_overrides
from edge.config.schema import Config
from edge.demo import DEMO_CLIP
from edge.errors import MediaDecodeError
from edge.events.envelope import Envelope
from edge.events.jsonlines import JsonLinesSink
from edge.features.video import iter_video_frames
from edge.models import FACE_MODEL, SPEECH_MODEL


@pytest.fixture
def cut_clip(tmp_path: Path) -> Path:
    """The demo clip cut after 200,000 bytes (`head -c 200000`): 3 decodable frames, no audio."""
    path = tmp_path / "cut.mp4"
    path.write_bytes(DEMO_CLIP.read_bytes()[:200_000])
    return path


@pytest.mark.parametrize("loop", [False, True])
def test_a_cut_file_is_an_error_not_a_short_take(cut_clip: Path, loop: bool) -> None:
    source = FileReplaySource(cut_clip, realtime=False, loop=loop)
    with pytest.raises(MediaDecodeError, match="truncated or corrupt"):
        for _ in source.items():
            pass
    assert source.passes == 0


def test_the_daemon_exits_non_zero_on_a_cut_file(cut_clip: Path) -> None:
    for extra in ([], ["--loop"]):
        result = subprocess.run([sys.executable, "-m", "edge.app.cli", "run", "--no-realtime", "--format", "jsonl",
                                 "--source", str(cut_clip), *extra], capture_output=True, text=True, timeout=60,
                                cwd=REPO_ROOT)
        assert result.returncode == 1, result.stderr
        assert "truncated or corrupt file" in result.stderr


def test_the_whole_clip_still_replays_cleanly() -> None:
    source = FileReplaySource(DEMO_CLIP, realtime=False)
    frames = sum(1 for item in source.items() if hasattr(item, "image"))
    assert frames == 97 and source.passes == 1


@pytest.mark.parametrize("port", ["0", "99999"])
def test_broker_ports_out_of_range_are_refused_where_they_were_given(port: str) -> None:
    for args in (["run", "--mqtt", f"mqtt://127.0.0.1:{port}"],
                 ["check-config", "/dev/null", "--set", f'output.mqtt_url="mqtt://127.0.0.1:{port}"']):
        result = subprocess.run([sys.executable, "-m", "edge.app.cli", *args], capture_output=True, text=True,
                                timeout=60, cwd=REPO_ROOT)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        origin = "--mqtt" if args[0] == "run" else "--set"
        assert f"{origin}: output.mqtt_url: port {port} is not in 1..65535" in result.stderr


def test_a_model_in_the_wrong_slot_is_named_for_what_it_is() -> None:
    for slot, wrong, kind in (("face", SPEECH_MODEL, "speech"), ("speech", FACE_MODEL, "face")):
        result = subprocess.run([sys.executable, "-m", "edge.app.cli", "run", "--no-realtime", "--format", "jsonl",
                                 "--set", f"models.{slot}={wrong}"], capture_output=True, text=True, timeout=60,
                                cwd=REPO_ROOT)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert f"this is a {kind} model, not a {slot} model (check models.{slot})" in result.stderr


def test_settings_checked_together_may_come_from_set_and_a_flag(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("not checked here")
    args = build_parser().parse_args(["run", "--set", f"output.tls_ca={ca}", "--mqtt", "mqtts://127.0.0.1:8883"])
    assert run_config(args).output.tls_ca == ca


def test_a_dead_camera_stops_the_watchdog_pings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:

    class DyingCapture:
        """A camera that gives 10 frames, then is gone: every later open fails (the hardware seam)."""

        def __init__(self, frames: int) -> None:
            self.frames = frames

        def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
            return self.frames > 0

        def read(self) -> tuple[bool, np.ndarray | None]:
            if self.frames == 0:
                return False, None
            self.frames -= 1
            return True, np.zeros((120, 160, 3), np.uint8)

        def release(self) -> None:
            pass

    opened: list[DyingCapture] = []

    def opener() -> DyingCapture:
        opened.append(DyingCapture(10 if not opened else 0))
        return opened[-1]

    camera = CameraSource(opener, name="v4l2:///dev/video0", backoff=Backoff(0.05, 0.1))
    monkeypatch.setattr("edge.app.daemon.open_sources", lambda *args, **kwargs: [camera])
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(tmp_path / "notify.sock"))
        server.settimeout(0.1)
        monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
        monkeypatch.setenv("WATCHDOG_USEC", "200000")   # pings due every 0.1 s
        config = apply_overrides(Config(), {"source.video": "v4l2:///dev/video0", "service.stall_s": 0.6,
                                            "output.state_interval_s": 0.5})
        stream = io.StringIO()
        daemon = Daemon(config, JsonLinesSink(Envelope("test"), stream))
        runner = threading.Thread(target=daemon.run)
        runner.start()
        messages: list[tuple[float, str]] = []
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                messages.append((time.monotonic(), server.recv(4096).decode()))
        daemon.stop_requested.set()
        runner.join(timeout=20)
    texts = [text for _, text in messages]
    stall = next(i for i, text in enumerate(texts) if text == "STATUS=stalled: v4l2:///dev/video0")
    assert "WATCHDOG=1" in texts[:stall]                    # pinged while frames came
    assert "WATCHDOG=1" not in texts[stall + 1:]            # and never after the camera died
    assert deadline - messages[stall][0] > 1.0              # ... though the daemon ran on for over a second
    states = [json.loads(line) for line in stream.getvalue().splitlines() if '"emotion-edge/state/' in line]
    assert states[0]["health"] == {"ok": True, "stalled_sources": [], "output": "connected"}
    assert {"ok": False, "stalled_sources": ["v4l2:///dev/video0"], "output": "connected"} in [
        s["health"] for s in states]                        # and the state payloads say so too


def test_payloads_that_never_reached_a_broker_make_the_exit_status_say_so() -> None:
    result = subprocess.run([sys.executable, "-m", "edge.app.cli", "run", "--no-realtime", "--mqtt",
                             f"mqtt://127.0.0.1:{free_port()}", "--set", "output.close_timeout_s=0.5"],
                            capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert result.returncode == PAYLOADS_LOST == 3, result.stderr
    assert "payloads were not delivered" in result.stderr


@pytest.mark.parametrize(("change", "message"), [
    ({"labels": None}, "labels must be a non-empty list of emotion names, got None"),
    ({"labels": ["joy", "happy", "sad", "angry", "fearful", "disgust", "surprised"]}, "unknown emotion label 'joy'"),
    ({"labels": ["neutral", "happy", "sad", "angry", "fearful"]}, "the graph gives 7 logits, its sidecar names 5"),
    ({"features": "crop 64"}, "the model takes [None, 1, 48, 48], but its crop size 64 give (batch, 1, 64, 64)"),
])
def test_a_face_sidecar_that_does_not_fit_is_refused_before_ready(change: dict, message: str, tmp_path: Path) -> None:
    model = tmp_path / FACE_MODEL.name
    shutil.copy(FACE_MODEL, model)
    sidecar = json.loads(FACE_MODEL.with_suffix(".json").read_text())
    if change.get("features") == "crop 64":
        sidecar["features"]["align"]["crop_size"] = 64
    else:
        sidecar.update(change)
    model.with_suffix(".json").write_text(json.dumps(sidecar))
    result = subprocess.run([sys.executable, "-m", "edge.app.cli", "run", "--no-realtime", "--format", "jsonl",
                             "--set", f"models.face={model}"], capture_output=True, text=True, timeout=60,
                            cwd=REPO_ROOT, env={**os.environ, "NOTIFY_SOCKET": str(tmp_path / "absent.sock")})
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert message in result.stderr and str(model.with_suffix("")) in result.stderr   # the model or its sidecar
    assert result.stdout == ""   # nothing was published: it stopped before the pipeline ran


def test_a_short_soak_holds_memory_fds_and_threads_flat(tmp_path: Path) -> None:
    """The CI form of the soak (docs/reliability.md has the 10-minute run): 40 s of the looped clip in real time."""
    out = tmp_path / "soak.json"
    result = subprocess.run([sys.executable, "-m", "edge.app.cli", "soak", "--seconds", "40", "--interval", "2",
                             "--warmup", "16", "--out", str(out)], capture_output=True, text=True, timeout=180,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr + result.stdout
    soak = json.loads(out.read_text())
    assert soak["alive_at_end"] and soak["exit_status"] == 0
    # worker threads of ONNX Runtime and the decoder come and go (12-21 in the 10-minute soak): bounded, not flat
    assert soak["fds"][1] - soak["fds"][0] <= 1 and soak["threads"][1] <= 2 * soak["threads"][0]
    assert soak["rss_mib"][1] - soak["rss_mib"][0] < 30, soak["rss_mib"]


def test_a_live_source_faster_than_the_pipeline_keeps_latency_bounded_and_counts_drops(
        monkeypatch: pytest.MonkeyPatch) -> None:

    frames = [f.image for f in iter_video_frames(DEMO_CLIP, 1)]

    class FloodCapture:
        """A camera delivering the demo take's frames as fast as they can be read (no frame rate)."""

        def __init__(self) -> None:
            self.index = 0

        def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
            return True

        def read(self) -> tuple[bool, np.ndarray]:
            self.index += 1
            return True, frames[self.index % len(frames)]

        def release(self) -> None:
            pass

    monkeypatch.setattr("edge.app.daemon.open_sources",
                        lambda *args, **kwargs: [CameraSource(FloodCapture, name="cam")])
    stream = io.StringIO()
    config = apply_overrides(Config(), {"source.video": "v4l2:///dev/video0", "output.stats_interval_s": 1.0})
    daemon = Daemon(config, JsonLinesSink(Envelope("test"), stream))
    threading.Timer(4.0, daemon.stop_requested.set).start()
    assert daemon.run() == 0
    payloads = [json.loads(line) for line in stream.getvalue().splitlines()]
    stats = [p for p in payloads if p["schema"].startswith("emotion-edge/stats/")]
    last = stats[-1]
    assert last["frames_dropped"] > last["frames_captured"] / 2     # far more frames than the pipeline can take
    p99 = [s["latency_ms"]["p99"] for s in stats if s["latency_ms"]["p99"] is not None]
    assert p99 and max(p99) < 1000                                  # but what is processed is fresh


def test_sigterm_while_models_load_and_twice_in_a_row_still_stops_cleanly() -> None:
    for signals in (1, 2):
        daemon = subprocess.Popen([sys.executable, "-m", "edge.app.cli", "run", "--no-realtime", "--loop", "--format",
                                   "jsonl"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  cwd=REPO_ROOT)
        assert daemon.stderr is not None
        seen = []
        for line in daemon.stderr:   # the signal goes in as soon as the models start loading
            seen.append(line)
            if "loading models" in line:
                for _ in range(signals):
                    daemon.send_signal(signal.SIGTERM)
                break
        rest = daemon.stderr.read()
        assert daemon.wait(timeout=60) == 0, "".join(seen) + rest
        assert "received SIGTERM: shutting down" in rest and "Traceback" not in rest


def test_the_broker_killed_mid_run_loses_nothing(tmp_path: Path) -> None:
    """The CI form of the broker-kill probe: SIGKILL the broker under a running daemon, restart it 3 s later."""
    from mosquitto import MosquittoBroker, Subscriber

    broker = MosquittoBroker(tmp_path, extra="autosave_interval 1\n")   # the subscriber's session survives a kill
    broker.start()
    subscriber = Subscriber(broker, "emotion/kill/#", persistent=True)
    time.sleep(1.5)
    daemon = subprocess.Popen([sys.executable, "-m", "edge.app.cli", "run", "--loop", "--mqtt", broker.url, "--set",
                               "output.device=kill", "--set", "output.state_interval_s=0.2"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)

    def distinct(name: str) -> list[int]:
        seqs = [json.loads(m.payload)["seq"] for m in subscriber.on(f"emotion/kill/{name}")]
        return list(dict.fromkeys(seqs))   # QoS 1 may deliver twice: first arrivals, in order

    try:
        subscriber.wait_for(lambda ms: len(distinct("state")) >= 5, timeout=60)
        assert broker._process is not None
        broker._process.kill()   # no clean shutdown of the broker
        broker._process.wait()
        broker._process = None
        time.sleep(3)
        broker.start()
        before = len(distinct("state"))
        subscriber.wait_for(lambda ms: len(distinct("state")) >= before + 20, timeout=60)
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
        subscriber.wait_for(lambda ms: any(m.topic == "emotion/kill/available" and m.payload == b"offline"
                                           for m in ms), timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
        subscriber.close()
        broker.stop()
    assert daemon.returncode == 0, stderr
    states, events = distinct("state"), distinct("events")
    assert states == list(range(1, len(states) + 1)) and events == list(range(1, len(events) + 1))
