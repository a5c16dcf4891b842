"""The daemon end to end: the real clip replayed through `emotion-edge run` to a real Mosquitto broker, read
back by a real paho subscriber; SIGTERM shutdown with systemd notifications; JSON lines; bad configs; a fusion head
(models.fusion) fusing the clip's face and voice, and refused when made for other models.

The shipped models are used when they are there (edge/models/*.onnx), else small real ONNX models.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from jsonschema import Draft202012Validator
from mosquitto import MosquittoBroker, Subscriber
from tiny_models import fusion_head, fusion_set, speech_model

from edge.app.cli import main
from edge.config.loader import apply_overrides
from edge.config.schema import Config, ModelsConfig
from edge.events.envelope import json_schema
from edge.fusion.gate import load_gate
from edge.models import FACE_MODEL, FUSION_GATE, FUSION_MODEL, SPEECH_MODEL, shipped_fusion_gate, shipped_fusion_head
from edge.models.loading import fusion_gate, load_models
from edge.models.loading import fusion_head as daemon_fusion_head
from edge.offline.classify import Classifier
from edge.runtime.select import load_backend
from edge.taxonomy import EMOTIONS

CLIP_EMOTION = "happy"  # RAVDESS 01-01-03-...: emotion 03


@pytest.fixture(scope="module")
def models() -> dict[str, Path]:
    """The shipped models, which get this take right offline (asserted in the end-to-end test)."""
    return {"face": FACE_MODEL, "speech": SPEECH_MODEL}


def model_flags(models: dict[str, Path]) -> list[str]:
    return ["--set", f"models.face={models['face']}", "--set", f"models.speech={models['speech']}"]


def emotion_edge(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "edge.app.cli", *args], cwd=REPO_ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)  # type: ignore[call-overload]


def validate(payload: dict, topic: str) -> None:
    Draft202012Validator(json_schema(topic)).validate(payload)


def offline_label(models: dict[str, Path], clip: Path) -> str | None:
    config = apply_overrides(Config(), {"models.speech": str(models["speech"]), "models.face": str(models["face"])})
    classifier = Classifier(load_models(config, video=True, audio=True), config, every_nth=3)
    return classifier.classify(clip)["label"]


def test_the_clip_through_the_daemon_to_a_real_broker(
    mosquitto_broker: MosquittoBroker, models: dict[str, Path], av_clip: Path
) -> None:
    subscriber = Subscriber(mosquitto_broker, "emotion/e2e/#")
    try:
        daemon = emotion_edge("run", "--source", f"file://{av_clip}", "--mqtt", mosquitto_broker.url,
                              "--set", "output.device=e2e", "--set", "output.stats_interval_s=1", *model_flags(models))
        _, stderr = daemon.communicate(timeout=60)
        assert daemon.returncode == 0, stderr
        subscriber.wait_for(lambda ms: any(m.topic == "emotion/e2e/available" and m.payload == b"offline" for m in ms))
    finally:
        subscriber.close()
    available = [m.payload.decode() for m in subscriber.on("emotion/e2e/available")]
    assert available[0] == "online" and available[-1] == "offline"
    events = [json.loads(m.payload) for m in subscriber.on("emotion/e2e/events")]
    assert events, stderr
    for event in events:
        validate(event, "events")
        assert event["label"] in (*EMOTIONS, None)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    stamps = [e["ts"] for e in events]
    assert stamps == sorted(stamps)
    assert events[0]["event"] == "track_appeared" and events[0]["track_id"] == 1
    for topic in ("state", "stats"):
        payloads = [json.loads(m.payload) for m in subscriber.on(f"emotion/e2e/{topic}")]
        assert [p["seq"] for p in payloads] == list(range(1, len(payloads) + 1)) and payloads
        for payload in payloads:
            validate(payload, topic)
    final_stats = json.loads(subscriber.on("emotion/e2e/stats")[-1].payload)
    assert final_stats["frames_captured"] == 97 and final_stats["events_dropped"] == 0
    assert offline_label(models, av_clip) == CLIP_EMOTION
    labels = [e["label"] for e in events if e["track_id"] == 1 and e["event"] == "emotion_changed"]
    assert CLIP_EMOTION in labels


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    directory = tempfile.mkdtemp(prefix="notify-")
    path = os.path.join(directory, "sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(20)
        yield sock, path
    os.unlink(path)
    os.rmdir(directory)


def test_sigterm_drains_publishes_offline_and_exits_0(
    mosquitto_broker: MosquittoBroker, models: dict[str, Path], av_clip: Path,
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    subscriber = Subscriber(mosquitto_broker, "emotion/term/#")
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}
    try:
        daemon = emotion_edge("run", "--source", f"file://{av_clip}", "--loop", "--mqtt", mosquitto_broker.url,
                              "--set", "output.device=term", *model_flags(models), env=env)
        assert sock.recv(4096).startswith(b"READY=1")
        subscriber.wait_for(lambda ms: any(m.topic == "emotion/term/events" for m in ms), timeout=20)
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, stderr
        subscriber.wait_for(lambda ms: any(m.topic == "emotion/term/available" and m.payload == b"offline" for m in ms))
    finally:
        if daemon.poll() is None:
            daemon.kill()
        subscriber.close()
    notes = []
    sock.settimeout(0.5)
    while True:
        try:
            notes.append(sock.recv(4096))
        except TimeoutError:
            break
    assert b"WATCHDOG=1" in notes and notes[-1] == b"STOPPING=1"
    assert "received SIGTERM" in stderr
    retained = Subscriber(mosquitto_broker, "emotion/term/available")
    try:
        retained.wait_for(lambda ms: len(ms) == 1)
        assert retained.messages[0].payload == b"offline" and retained.messages[0].retain
    finally:
        retained.close()


def test_without_a_broker_payloads_are_json_lines_on_stdout(models: dict[str, Path], av_clip: Path) -> None:
    daemon = emotion_edge("run", "--no-realtime", "--source", f"file://{av_clip}", *model_flags(models))
    stdout, stderr = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, stderr
    payloads = [json.loads(line) for line in stdout.splitlines()]
    topics = [p["schema"].split("/")[1] for p in payloads]
    assert "events" in topics and topics[-1] == "stats"
    for payload, topic in zip(payloads, topics, strict=True):
        validate(payload, topic)


def test_a_bad_config_exits_2_naming_the_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[source]\nvideo = "v4l2:///dev/video0"\n\n[pipeline]\ndetect_every = "three"\n')
    with caplog.at_level(logging.ERROR):
        assert main(["run", "--config", str(bad)]) == 2
    assert f"{bad}:5: pipeline.detect_every: must be an integer" in caplog.text
    assert main(["check-config", str(bad)]) == 2
    assert f"{bad}:5: pipeline.detect_every" in capsys.readouterr().err
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert main(["run", "--set", "pipeline.detect_everything=2"]) == 2
    assert "pipeline.detect_everything: unknown key" in caplog.text


def test_a_missing_model_exits_2_naming_the_file(
    tmp_path: Path, av_clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        code = main(["run", "--source", f"file://{av_clip}", "--set", f"models.face={tmp_path / 'none.onnx'}"])
    assert code == 2 and "models.face" in caplog.text and "none.onnx" in caplog.text


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Face model favouring happy, speech model favouring sad, a fusion head over both favouring surprised."""
    return fusion_set(tmp_path_factory.mktemp("tiny"))


def test_with_models_fusion_the_head_fuses_face_and_voice_and_events_say_so(
    tiny: dict[str, Path], av_clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = [f"models.{name}={path}" for name, path in tiny.items()]
    assert main(["run", "--no-realtime", "--source", f"file://{av_clip}",
                 *[arg for flag in flags for arg in ("--set", flag)]]) == 0
    payloads = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for payload in payloads:
        validate(payload, payload["schema"].split("/")[1])
    changes = [(p["label"], p["fusion"]) for p in payloads if p.get("event") == "emotion_changed"]
    assert changes[0] == ("happy", "face_only") and ("surprised", "model") in changes
    assert "decision" not in {fusion for _, fusion in changes}
    assert "model" in {t["fusion"] for p in payloads if "tracks" in p for t in p["tracks"]}


def test_a_fusion_head_made_for_other_models_stops_the_daemon_naming_the_model(
    tiny: dict[str, Path], av_clip: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other_speech = speech_model(tmp_path, "angry")
    head = fusion_head(tmp_path, other_speech, tiny["face"])
    flags = [f"models.face={tiny['face']}", f"models.speech={tiny['speech']}", f"models.fusion={head}"]
    with caplog.at_level(logging.ERROR):
        code = main(["run", "--no-realtime", "--source", f"file://{av_clip}",
                     *[arg for flag in flags for arg in ("--set", flag)]])
    assert code == 2
    assert f"made for the speech model {other_speech.name}" in caplog.text and tiny["speech"].name in caplog.text


def test_with_one_modality_a_configured_head_is_not_loaded(
    tiny: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    models = ModelsConfig(fusion=tiny["fusion"])
    with caplog.at_level(logging.WARNING):
        assert daemon_fusion_head(models, None, load_backend(tiny["face"])) is None
    assert "only video is used: fusing at the decision level" in caplog.text
    head = daemon_fusion_head(models, load_backend(tiny["speech"]), load_backend(tiny["face"]))
    assert head is not None and head.artifact == tiny["fusion"]
    assert daemon_fusion_head(replace(models, model_fusion=False), load_backend(tiny["speech"]),
                              load_backend(tiny["face"])) is None


def test_a_shipped_head_would_be_the_default_for_the_shipped_models_only(
        tiny: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    speech, face = load_backend(SPEECH_MODEL), load_backend(FACE_MODEL)
    assert not FUSION_MODEL.exists()   # this release ships none: the shipped models fuse at the decision level
    assert daemon_fusion_head(ModelsConfig(), speech, face) is None
    monkeypatch.setattr("edge.models.FUSION_MODEL", tiny["fusion"])
    assert shipped_fusion_head(None, None) == tiny["fusion"] == shipped_fusion_head(SPEECH_MODEL, FACE_MODEL)
    assert shipped_fusion_head(tiny["speech"], None) is None and shipped_fusion_head(None, tiny["face"]) is None


def test_the_shipped_gate_fuses_the_shipped_models_when_both_modalities_come_in(tiny: dict[str, Path]) -> None:
    speech, face = load_backend(SPEECH_MODEL), load_backend(FACE_MODEL)
    shipped = fusion_gate(ModelsConfig(), speech, face)
    assert shipped == load_gate(FUSION_GATE) and shipped is not None and set(shipped.bias) == {0.0}
    assert shipped_fusion_gate(SPEECH_MODEL, None) == FUSION_GATE
    assert fusion_gate(ModelsConfig(gated_fusion=False), speech, face) is None      # the fixed weights
    assert fusion_gate(ModelsConfig(), None, face) is None and fusion_gate(ModelsConfig(), speech, None) is None
    assert fusion_gate(ModelsConfig(speech=tiny["speech"]), load_backend(tiny["speech"]), face) is None
    assert fusion_gate(ModelsConfig(speech=tiny["speech"], gate=FUSION_GATE), load_backend(tiny["speech"]),
                       face) == shipped                                               # named: used with any model


def test_devices_lists_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices"]) == 0
    for line in capsys.readouterr().out.splitlines():
        assert json.loads(line)["kind"] in ("camera", "microphone")


def test_bench_prints_a_table_and_writes_json(
    tmp_path: Path, models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "--seconds", "2", "--out", str(out), *model_flags(models)]) == 0
    result = json.loads(out.read_text())
    assert 1.9 < result["wall_s"] < 4 and result["cpu_s"] > 0 and result["frames_captured"] > 30
    latency = result["end_to_end_ms"]
    assert latency["p50_ms"] is not None and latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"] <= latency[
        "max_ms"]
    assert len(result["latency_samples_ms"]) > 0
    assert result["detect_ms"]["p50"] > 0 and result["inference_ms"]["face"]["p50"] > 0
    table = capsys.readouterr().out
    assert "capture -> publish" in table and f"written to {out}" in table
