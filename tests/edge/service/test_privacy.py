"""No telemetry leaves the process: ONNX Runtime writes no database or device id, and the daemon connects to
nothing but its broker (seen through an audit hook on socket.connect and socket.getaddrinfo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT
from mosquitto import MosquittoBroker

_AUDITED = """
import json, sys
seen, bound = [], []
def own_addresses():
    names = set()
    for sock in bound:
        try:
            names.add(sock.getsockname())
        except OSError:   # closed since
            pass
    return names
def hook(event, args):
    if event == "socket.bind":
        bound.append(args[0])
    elif event in ("socket.connect", "socket.sendto"):
        address = args[1]
        seen.append(["own" if address in own_addresses() else event, repr(address)])
    elif event == "socket.getaddrinfo":
        seen.append([event, repr(args[0])])
sys.addaudithook(hook)
from edge.app.cli import main
status = main(sys.argv[1:])
with open({record!r}, "w") as out:
    json.dump(seen, out)
sys.exit(status)
"""


def _clean_env(home: Path) -> dict[str, str]:
    """A user's environment: no ORT_DISABLE_TELEMETRY, and none of the CI variables (CI, GITHUB_ACTIONS ...)
    under which ONNX Runtime keeps quiet by itself, so that these tests mean the same in CI as on a device."""
    return {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}


def test_onnx_runtime_keeps_no_telemetry_database(tmp_path: Path, speech_flac: Path) -> None:
    for command in (["-m", "edge.app.cli", "classify", str(speech_flac)],
                    ["-c", "import export.quantize, onnxruntime; onnxruntime.InferenceSession("
                           "'edge/models/speech_cnn.onnx')"]):
        result = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=120,
                                cwd=REPO_ROOT, env=_clean_env(tmp_path))
        assert result.returncode == 0, result.stderr
    assert not (tmp_path / ".cache" / "Microsoft").exists()


def test_without_the_opt_out_onnx_runtime_would_write_one(tmp_path: Path) -> None:
    # the check above can fail: this ONNX Runtime does create the database when nobody opts out
    result = subprocess.run([sys.executable, "-c", "import onnxruntime; onnxruntime.InferenceSession("
                             "'edge/models/speech_cnn.onnx')"], capture_output=True, text=True, timeout=120,
                            cwd=REPO_ROOT, env=_clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    created = (tmp_path / ".cache" / "Microsoft").exists()
    assert created, "this onnxruntime keeps no telemetry database at all: the privacy test proves nothing here"


def test_the_daemon_connects_only_to_its_broker(tmp_path: Path, mosquitto_broker: MosquittoBroker) -> None:
    record = tmp_path / "sockets.json"
    result = subprocess.run(
        [sys.executable, "-c", _AUDITED.format(record=str(record)), "run", "--no-realtime",
         "--mqtt", mosquitto_broker.url, "--set", "output.device=privacy"],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env=_clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    seen = json.loads(record.read_text())
    broker = repr((mosquitto_broker.host, mosquitto_broker.port))
    # "own": paho wakes its network loop through a loopback socket pair that it binds itself
    connects = {target for event, target in seen if event in ("socket.connect", "socket.sendto")}
    assert broker in connects, "the audit hook did not see the broker connection"
    assert connects == {broker}, f"connected to {connects - {broker}}, not only to the broker"
    lookups = {target for event, target in seen if event == "socket.getaddrinfo"}
    assert lookups <= {repr(mosquitto_broker.host)}, f"name lookups beyond the broker's: {lookups}"
    assert not (tmp_path / ".cache" / "Microsoft").exists()
