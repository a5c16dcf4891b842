"""``emotion-edge fleet``: the latest state of every board, read from a (central) broker.

Boards publish ``<prefix>/<device>/{available,state}`` retained, and a Mosquitto bridge
(``systemd/mosquitto-bridge.conf.example``, ``docs/fleet.md``) adds ``<prefix>/<device>/bridge``
(``1`` while the board's uplink is up, ``0`` after it went down). Subscribing to those with
``+`` for the device gets every board's retained latest values at once; ``collect`` waits a few
seconds for them and ``BoardView`` says, per board: online or not, the uplink, the number of
tracks and the emotion of the most prominent one (the rule of ``edge.events.homeassistant``), and
how old its state is.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.config.schema import OutputConfig
from edge.errors import InputError
from edge.events.homeassistant import sensor_state
from edge.events.mqtt import authenticate, broker_address

FLEET_TOPICS = ("available", "state", "bridge")


@dataclass
class BoardView:
    """What the broker holds about one board."""

    device: str
    available: str | None = None
    bridge: str | None = None
    state: dict[str, Any] | None = None

    def summary(self, now: float) -> dict[str, Any]:
        top = sensor_state(self.state) if self.state is not None else None
        return {
            "device": self.device,
            "available": self.available,
            "uplink": {"1": "up", "0": "down"}.get(self.bridge or ""),
            "tracks": None if top is None else top["track_count"],
            "emotion": None if top is None else top["emotion"],
            "confidence": None if top is None else top["confidence"],
            "state_age_s": None if self.state is None else round(now - float(self.state["ts"]), 1),
        }


def collect(output: OutputConfig, seconds: float) -> dict[str, BoardView]:
    """Every board's retained availability, bridge status and state on ``output.mqtt_url`` after ``seconds``."""
    if output.mqtt_url is None:
        raise InputError("fleet: give the central broker with --mqtt mqtt://host[:port] (or output.mqtt_url)")
    host, port, _ = broker_address(output.mqtt_url)
    boards: dict[str, BoardView] = {}
    lock, connected = threading.Lock(), threading.Event()
    refused: list[str] = []

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            refused.append(str(reason))
        else:
            client.subscribe([(f"{output.prefix}/+/{name}", 1) for name in FLEET_TOPICS])
        connected.set()

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        _, device, name = message.topic.split("/", 2)
        payload = bytes(message.payload).decode(errors="replace")
        with lock:
            board = boards.setdefault(device, BoardView(device))
            if name == "state" and payload:
                board.state = json.loads(payload)
            elif name == "available":
                board.available = payload or None
            elif name == "bridge":
                board.bridge = payload or None

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"emotion-edge-fleet-{time.monotonic_ns()}")
    authenticate(client, output)
    client.on_connect, client.on_message = on_connect, on_message
    try:
        client.connect(host, port, keepalive=output.keepalive_s)
    except OSError as exc:
        raise InputError(f"fleet: cannot reach the broker {host}:{port}: {exc}") from None
    client.loop_start()
    try:
        if not connected.wait(timeout=max(seconds, 5.0)):
            raise InputError(f"fleet: the broker {host}:{port} did not answer the connection")
        if refused:
            raise InputError(f"fleet: the broker {host}:{port} refused the connection: {refused[0]}")
        time.sleep(seconds)
    finally:
        client.disconnect()
        client.loop_stop()
    with lock:
        return dict(sorted(boards.items()))
