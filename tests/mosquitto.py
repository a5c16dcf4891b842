"""A real Mosquitto broker and a real paho subscriber for tests (pytest plugin: the ``mosquitto_broker`` fixture).

The broker listens on 127.0.0.1 on a free port with a throw-away config and persistence directory
(so that retained messages and persistent subscriber sessions survive ``restart()``). It can be
stopped and started again on the same port for broker-down tests. Without ``mosquitto`` installed
the fixture fails (it does not skip): CI installs it with ``script/setup dev``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

MOSQUITTO_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto")


def mosquitto_binary() -> str:
    for candidate in MOSQUITTO_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    pytest.fail("mosquitto is not installed: run `script/setup dev` (apt package mosquitto)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MosquittoBroker:
    """One mosquitto process on 127.0.0.1:<port>; ``stop()``/``start()``/``restart()`` keep the port and state."""

    def __init__(self, workdir: Path, port: int | None = None, listener_options: str = "",
                 allow_anonymous: bool = True, extra: str = "") -> None:
        """``listener_options``: lines for the listener (TLS files); ``extra``: more config (a bridge)."""
        self.workdir = workdir
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.url = f"mqtt://{self.host}:{self.port}"
        self.log = workdir / "mosquitto.log"
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} {self.host}\n"
            f"{listener_options}"
            f"allow_anonymous {'true' if allow_anonymous else 'false'}\n"
            # As root, mosquitto would drop to the mosquitto user, who cannot write this directory.
            f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            "max_queued_messages 100000\n"
            "queue_qos0_messages true\n"  # persistent subscribers also get the QoS 0 stats sent while they were away
            f"log_dest file {self.log}\n"
            "log_type all\n"
            f"{extra}"
        )
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 20.0) -> None:
        if self.running:
            return
        self._process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                error = self._process.stderr.read().decode() if self._process.stderr else ""
                pytest.fail(f"mosquitto exited with {self._process.returncode}: {error}{self._log_tail()}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        self.stop()
        pytest.fail(f"mosquitto did not accept connections on {self.port} within {timeout} s{self._log_tail()}")

    def stop(self) -> None:
        """SIGTERM (mosquitto saves its persistence file) and wait."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stderr:
            self._process.stderr.close()
        self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def _log_tail(self) -> str:
        if not self.log.exists():
            return ""
        return "\n--- mosquitto.log ---\n" + "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])


@pytest.fixture
def mosquitto_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    """A running broker on a free port; stopped after the test."""
    broker = MosquittoBroker(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int


class Subscriber:
    """A real paho client subscribed (QoS 1) to ``topic_filter`` that records every message it receives.

    ``persistent=True`` uses a fixed client id and a persistent session, so the broker queues QoS 1
    messages for it while it is disconnected (and across a broker restart): it then receives
    everything published once it is back.
    """

    def __init__(self, broker: MosquittoBroker, topic_filter: str, persistent: bool = False,
                 credentials: tuple[str, str] | None = None, ca_file: Path | None = None) -> None:
        self.messages: list[Received] = []
        self._changed = threading.Condition()
        self._subscribed = threading.Event()
        self.topic_filter = topic_filter
        client_id = f"test-subscriber-{os.getpid()}-{id(self)}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not persistent)
        self.client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
        if credentials is not None:
            self.client.username_pw_set(*credentials)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect_async(broker.host, broker.port, keepalive=10)
        self.client.loop_start()
        if not self._subscribed.wait(5):
            pytest.fail(f"subscriber could not subscribe to {topic_filter} on {broker.url}")

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags, reason: object,
                    props: object) -> None:
        # A persistent session the broker kept still holds the subscription, and everything published while
        # this client was away is queued in it. Subscribing again would add the retained copy of each
        # retained topic on top of that queued message: a duplicate a real persistent consumer never sees.
        if flags.session_present:
            self._subscribed.set()
        else:
            client.subscribe(self.topic_filter, qos=1)

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int, codes: object, props: object) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._changed:
            self.messages.append(Received(message.topic, bytes(message.payload), bool(message.retain), message.qos))
            self._changed.notify_all()

    def on(self, topic: str) -> list[Received]:
        with self._changed:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 20.0) -> list[Received]:
        """Wait until ``predicate(messages)`` holds; fail the test with what arrived otherwise."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.messages):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    shown = [(m.topic, m.payload[:80]) for m in self.messages[-10:]]
                    pytest.fail(f"timed out after {timeout} s; last messages received: {shown}")
                self._changed.wait(remaining)
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
