"""What a new user meets first: commands without PortAudio or the train extra, the packaged demo clip, a closed
stdout, empty device lists, plain file paths, the bench's output path, the last state payload, bad image files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from edge.app.cli import build_parser
from edge.app.cli import main as edge_main
from edge.capture import open_sources
from edge.capture.file_replay import FileReplaySource
from edge.config.schema import SourceConfig
from edge.demo import DEMO_CLIP
from edge.errors import InputError

# Runs a console entry point with one module failing to import the way it fails on a machine without it.
_WITHOUT = """
import importlib.abc, sys
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == {module!r}:
            raise {error}
        return None
sys.meta_path.insert(0, Missing())
from {entry_module} import {entry}
sys.argv[0] = {prog!r}
sys.exit({entry}(sys.argv[1:]) if {takes_argv} else {entry}())
"""


def _run_without(module: str, error: str, entry: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    entry_module, name = entry.split(":")
    code = _WITHOUT.format(module=module, error=error, entry_module=entry_module, entry=name, prog="cmd",
                           takes_argv=entry_module == "edge.app.cli")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO_ROOT)


NO_PORTAUDIO = 'OSError("PortAudio library not found")'


def test_every_command_but_the_microphone_works_without_portaudio(speech_flac: Path) -> None:
    help_run = _run_without("sounddevice", NO_PORTAUDIO, "edge.app.cli:main", ["--help"])
    assert help_run.returncode == 0 and "classify" in help_run.stdout, help_run.stderr
    classified = _run_without("sounddevice", NO_PORTAUDIO, "edge.app.cli:main", ["classify", str(speech_flac)])
    assert classified.returncode == 0, classified.stderr
    assert json.loads(classified.stdout)["label"] is not None
    devices = _run_without("sounddevice", NO_PORTAUDIO, "edge.app.cli:main", ["devices"])
    assert devices.returncode == 1 and "libportaudio2" in devices.stderr and "Traceback" not in devices.stderr
    mic = _run_without("sounddevice", NO_PORTAUDIO, "edge.app.cli:main", ["run", "--mic", "default"])
    assert mic.returncode == 2 and "libportaudio2" in mic.stderr and "Traceback" not in mic.stderr


def test_training_commands_without_the_train_extra_print_the_install_hint() -> None:
    for entry in ("train.cli.entry:train_main", "train.cli.entry:bench_main"):
        result = _run_without("tqdm", 'ModuleNotFoundError("No module named \'tqdm\'", name="tqdm")', entry,
                              ["--help"])
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr and "[train]" in result.stderr and "tqdm" in result.stderr


def test_a_reader_that_closes_stdout_ends_the_daemon_quietly() -> None:
    daemon = subprocess.Popen([sys.executable, "-m", "edge.app.cli", "run", "--no-realtime", "--loop"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    assert daemon.stdout is not None and daemon.stderr is not None
    assert json.loads(daemon.stdout.readline())["schema"].startswith("emotion-edge/")
    daemon.stdout.close()   # `| head -1`
    daemon.wait(timeout=60)
    stderr = daemon.stderr.read()
    assert daemon.returncode == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr


def test_devices_says_when_there_are_none(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr("edge.app.cli.list_cameras", lambda: [])
    monkeypatch.setattr("edge.app.cli.list_microphones", lambda: [])
    assert edge_main(["devices"]) == 0
    assert capsys.readouterr().out == ""
    assert "no camera found" in caplog.text and "no microphone found" in caplog.text


def test_a_plain_file_path_is_a_replay_source(tmp_path: Path) -> None:
    (source,) = open_sources(SourceConfig(video=str(DEMO_CLIP)))
    assert isinstance(source, FileReplaySource)
    with pytest.raises(InputError, match="file://"):
        open_sources(SourceConfig(video=str(tmp_path / "absent.mp4")))


def test_bench_writes_its_json_under_runs() -> None:
    assert build_parser().parse_args(["bench"]).out == Path("runs/bench_latency.json")


def test_the_run_ends_with_one_final_state() -> None:
    result = subprocess.run([sys.executable, "-m", "edge.app.cli", "run", "--no-realtime"], capture_output=True,
                            text=True, timeout=120, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    states = [{k: v for k, v in p.items() if k not in ("ts", "seq")}
              for p in map(json.loads, result.stdout.splitlines()) if p["schema"].startswith("emotion-edge/state/")]
    repeated = [a for a, b in zip(states, states[1:], strict=False) if a == b]
    assert states and not repeated, f"identical state payloads in a row: {repeated}"


def test_bad_images_get_the_same_messages_as_bad_media(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").touch()
    (tmp_path / "empty.mp4").touch()
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    result = subprocess.run([sys.executable, "-m", "edge.app.cli", "classify", "--no-speech",
                             *(str(tmp_path / n) for n in ("empty.jpg", "empty.mp4", "missing.jpg", "broken.jpg"))],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines == [f"ERROR emotion-edge: {tmp_path / 'empty.jpg'}: the file is empty (0 bytes)",
                     f"ERROR emotion-edge: {tmp_path / 'empty.mp4'}: the file is empty (0 bytes)",
                     f"ERROR emotion-edge: {tmp_path / 'missing.jpg'}: no such file",
                     f"ERROR emotion-edge: {tmp_path / 'broken.jpg'}: not a readable image (OpenCV cannot decode it)"]
