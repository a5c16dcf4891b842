"""A board's broker bridged to a central broker (TLS, credentials) with the shipped example config: the daemon's
payloads reach a central subscriber in order, nothing lost while the central broker restarts; `emotion-edge fleet`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO_ROOT
from mosquitto import MosquittoBroker, Received, Subscriber

from edge.demo import DEMO_CLIP

EXAMPLE = REPO_ROOT / "systemd" / "mosquitto-bridge.conf.example"
USERS = {"kiosk-1": "board-secret", "consumer": "consumer-secret"}


def _tls(directory: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 signed by it."""
    directory.mkdir()
    ca, ca_key = directory / "ca.crt", directory / "ca.key"
    cert, key = directory / "server.crt", directory / "server.key"
    csr, ext = directory / "server.csr", directory / "san"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    for command in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "1",
         "-subj", "/CN=emotion-edge test CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days", "1",
         "-extfile", ext],
    ):
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True, timeout=60)
    return ca, cert, key


def _passwords(path: Path) -> Path:
    for i, (user, password) in enumerate(USERS.items()):
        subprocess.run(["mosquitto_passwd", *(["-c"] if i == 0 else []), "-b", str(path), user, password],
                       check=True, capture_output=True, timeout=30)
    path.chmod(0o600)
    return path


def _seqs(messages: list[Received], name: str) -> list[int]:
    return [json.loads(m.payload)["seq"] for m in messages if m.topic == f"emotion/kiosk-1/{name}"]


def _first_arrivals(seqs: list[int]) -> list[int]:
    """Sequence numbers in arrival order without repeats: QoS 1 is at-least-once (a redelivery after the
    restart, or the retained state replayed on resubscribing, comes twice); consumers drop repeats by seq."""
    seen: set[int] = set()
    return [s for s in seqs if not (s in seen or seen.add(s))]


def test_bridged_payloads_reach_the_central_broker_in_order_across_its_restart(tmp_path: Path) -> None:
    ca, cert, key = _tls(tmp_path / "tls")
    for name in ("central", "board"):
        (tmp_path / name).mkdir()
    central = MosquittoBroker(tmp_path / "central", allow_anonymous=False, listener_options=(
        f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\npassword_file {_passwords(tmp_path / 'passwd')}\n"))
    bridge = (EXAMPLE.read_text().replace("central.example.com:8883", f"127.0.0.1:{central.port}")
              .replace("/etc/mosquitto/certs/central-ca.crt", str(ca)).replace("change-me", USERS["kiosk-1"]))
    board = MosquittoBroker(tmp_path / "board", extra=bridge)
    central.start()
    board.start()
    consumer = Subscriber(central, "emotion/+/#", persistent=True, credentials=("consumer", USERS["consumer"]),
                          ca_file=ca)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "edge.app.cli", "run", "--source", str(DEMO_CLIP), "--loop", "--mqtt", board.url,
         "--format", "jsonl", "--set", "output.device=kiosk-1", "--set", "output.state_interval_s=0.2"],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def states_seen(ms: list[Received]) -> int:
            return len(_first_arrivals(_seqs(ms, "state")))

        before = states_seen(consumer.wait_for(lambda ms: states_seen(ms) >= 5, timeout=60))
        central.stop()       # the uplink is gone: the board's broker holds the QoS 1 payloads for it
        time.sleep(3)
        central.start()
        consumer.wait_for(lambda ms: states_seen(ms) >= before + 30, timeout=60)
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, stderr
        messages = consumer.wait_for(lambda ms: any(m.topic == "emotion/kiosk-1/available" and m.payload == b"offline"
                                                    for m in ms), timeout=60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
        consumer.close()
    states, events = _first_arrivals(_seqs(messages, "state")), _first_arrivals(_seqs(messages, "events"))
    assert len(states) >= before + 30 and states == list(range(1, len(states) + 1)), "state payloads lost or reordered"
    assert events and events == list(range(1, len(events) + 1)), "events lost or reordered"

    fleet = subprocess.run(
        [sys.executable, "-m", "edge.app.cli", "fleet", "--mqtt", f"mqtts://127.0.0.1:{central.port}", "--json",
         "--wait", "1", "--set", "output.username=consumer", "--set", f"output.password={USERS['consumer']}",
         "--set", f"output.tls_ca={ca}"], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    central.stop()
    board.stop()
    assert fleet.returncode == 0, fleet.stderr
    (row,) = [json.loads(line) for line in fleet.stdout.splitlines()]
    assert (row["device"], row["available"], row["tracks"]) == ("kiosk-1", "offline", 0)
    # Mosquitto's own bridge flag: after the central broker restarts it can be left at 0 by the old session's
    # will racing the new connection's 1 (seen in 1 of 6 runs here); docs/fleet.md says so
    assert row["uplink"] in ("up", "down")
    assert row["emotion"] == "none" and row["state_age_s"] is not None
