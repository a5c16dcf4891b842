"""MQTT sink (paho-mqtt 2.x): availability with a last will, events and state QoS 1, stats QoS 0, in order.

On every connection it also sends Home Assistant's discovery config (``output.homeassistant``,
``edge.events.homeassistant``) or, switched off, the empty retained payloads that remove it; the
sensor's state follows each state payload (only the newest is kept while disconnected). None of
these count in the delivered/dropped statistics.

Topics are ``<prefix>/<device>/{available,events,state,stats}``. ``available`` is a retained plain
string, ``online`` on every (re)connect and ``offline`` on close or, as the last will, when the
process dies. ``state`` is retained.

One buffering mechanism, provable order: payloads wait in this sink's own bounded deque and are
handed to paho only by one sender thread, only while connected, at most ``INFLIGHT_WINDOW`` at a
time. paho keeps the QoS 1 messages it holds across a lost connection and resends them first on
reconnect (in their order), so after a reconnect nothing new is handed over until every message
from an earlier connection is acknowledged; and paho's reconnect (``on_pre_connect``) waits for a
hand-over in progress to finish, so no message can reach a new connection ahead of the older ones
paho resends. QoS 0 messages that paho loses with the connection go back to the front of the
deque. When the deque is full a payload is dropped and counted, never silently: the oldest stats, else the
oldest state (superseded by the newer ones), else the oldest event (``DROP_ORDER``). paho is
never called with this sink's lock held (its callbacks take that lock), so there is no lock-order
deadlock.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from edge.config.schema import OutputConfig
from edge.events import homeassistant
from edge.events.envelope import TOPICS, Envelope, encode
from edge.events.sink import Sink, Topic

log = logging.getLogger(__name__)

INFLIGHT_WINDOW = 20
DROP_ORDER = ("stats", "state", "events")
"""What a full buffer gives up first: periodic health, then superseded states, events last."""
CONNACK_TIMEOUT_S = 5.0
"""A broker that accepted the TCP connection but sent no CONNACK within this long is logged."""
# topic -> (QoS, retained)
DELIVERY = {"events": (1, False), "state": (1, True), "stats": (0, False)}
AVAILABLE_QOS = 1


def broker_address(url: str) -> tuple[str, int, bool]:
    """``mqtt://host[:port]`` / ``mqtts://host[:port]`` -> (host, port, tls)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"{url!r} is not an mqtt://host[:port] or mqtts://host[:port] URL")
    tls = parts.scheme == "mqtts"
    return parts.hostname, parts.port or (8883 if tls else 1883), tls


def authenticate(client: mqtt.Client, config: OutputConfig) -> None:
    """Credentials and TLS (``mqtts://``) of ``config`` on a paho client, before it connects."""
    if config.username is not None:
        client.username_pw_set(config.username, config.password)
    if config.mqtt_url is not None and broker_address(config.mqtt_url)[2]:
        client.tls_set(
            ca_certs=None if config.tls_ca is None else str(config.tls_ca),
            certfile=None if config.tls_cert is None else str(config.tls_cert),
            keyfile=None if config.tls_key is None else str(config.tls_key),
        )
        client.tls_insecure_set(config.tls_insecure)


@dataclass(frozen=True)
class _Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    counted: bool = True  # False for availability announcements: not part of the delivered/dropped stats


@dataclass(frozen=True)
class _Handed:
    """A message handed to paho and not yet acknowledged (QoS 1) or written (QoS 0)."""

    message: _Message
    generation: int
    info: mqtt.MQTTMessageInfo


class MqttSink(Sink):
    """Publishes enveloped payloads to an MQTT broker; see the module docstring for the delivery rules."""

    def __init__(self, config: OutputConfig, envelope: Envelope) -> None:
        if config.mqtt_url is None:
            raise ValueError("MqttSink needs output.mqtt_url")
        host, port, _ = broker_address(config.mqtt_url)
        self.config = config
        self.envelope = envelope
        base = f"{config.prefix}/{envelope.device}"
        self.topics = {name: f"{base}/{name}" for name in (*TOPICS, "available")}
        self._ha_state_topic = (homeassistant.state_topic(config.prefix, envelope.device)
                                if config.homeassistant else None)

        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: deque[_Message] = deque()
        self._handed: dict[int, _Handed] = {}  # mid -> message, in hand-over order
        self._early_acks: set[int] = set()  # acknowledged before the sender recorded the mid
        self._generation = 0  # counts successful connections
        self._connected = False
        self._handing_over = False  # the sender is inside client.publish
        self._online = True
        self._announce = False
        self._discovery: deque[_Message] = deque()  # Home Assistant's config (or its removal), sent per connection
        self._sensor_state: bytes | None = None  # the newest Home Assistant sensor state not yet handed over
        self._closing = False
        self._deadline = float("inf")
        self._delivered = 0
        self._dropped = 0
        self._overflowing = False
        self._unreachable_logged = False

        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"emotion-edge-{envelope.device}-{os.getpid()}",
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        client.will_set(self.topics["available"], "offline", qos=AVAILABLE_QOS, retain=True)
        authenticate(client, config)
        client.reconnect_delay_set(config.reconnect_min_s, config.reconnect_max_s)  # type: ignore[arg-type]
        client.max_inflight_messages_set(INFLIGHT_WINDOW)
        client.on_connect = self._on_connect
        client.on_pre_connect = self._on_pre_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_socket_open = self._on_socket_open
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        self._broker = f"{host}:{port}"
        client.connect_async(host, port, keepalive=config.keepalive_s)
        client.loop_start()
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)
        self._sender.start()

    # -- the Sink interface ------------------------------------------------------------------

    def publish(self, topic: Topic, body: dict[str, Any]) -> None:
        qos, retain = DELIVERY[topic]
        with self._lock:
            if self._closing:
                raise RuntimeError("publish on a closed sink")
            payload = encode(self.envelope.wrap(topic, body)).encode()
            while len(self._pending) >= self.config.buffer_size:
                self._make_room_locked()
                self._dropped += 1
                if not self._overflowing:
                    self._overflowing = True
                    log.warning(
                        "MQTT buffer full (%d payloads held for %s): dropping stats first, then older states, "
                        "then the oldest events",
                        self.config.buffer_size,
                        self._broker,
                    )
            self._pending.append(_Message(self.topics[topic], payload, qos, retain))
            if topic == "state" and self._ha_state_topic is not None:
                self._sensor_state = json.dumps(homeassistant.sensor_state(body)).encode()
            self._wake.notify_all()

    def _make_room_locked(self) -> None:
        """Drop one held payload: the oldest stats, else the oldest state (a newer one supersedes it), else the
        oldest event."""
        for kind in DROP_ORDER:
            topic = self.topics[kind]
            for position, message in enumerate(self._pending):
                if message.topic == topic:
                    del self._pending[position]
                    return
        self._pending.popleft()

    def _discovery_messages(self) -> list[_Message]:
        """Home Assistant's retained discovery config; switched off, the empty retained payloads that remove
        the sensor and its last state."""
        topic = homeassistant.discovery_topic(self.config.homeassistant_prefix, self.envelope.device)
        if not self.config.homeassistant:
            sensor = homeassistant.state_topic(self.config.prefix, self.envelope.device)
            return [_Message(topic, b"", 1, True, counted=False), _Message(sensor, b"", 1, True, counted=False)]
        payload = homeassistant.discovery_payload(self.config.prefix, self.envelope.device,
                                                  homeassistant.package_version())
        return [_Message(topic, json.dumps(payload).encode(), 1, True, counted=False)]

    def available(self, online: bool) -> None:
        """Announce ``online``; every (re)connection announces the current value anyway, so an unchanged
        value sends nothing more (one ``online`` per connection)."""
        with self._lock:
            if online != self._online:
                self._online = online
                self._announce = True
                self._wake.notify_all()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            handed = sum(1 for entry in self._handed.values() if entry.message.counted)
            return {
                "buffered": len(self._pending) + handed,
                "dropped": self._dropped,
                "delivered": self._delivered,
                "connected": self._connected,
            }

    def close(self, timeout: float | None = None) -> None:
        """Deliver held payloads for up to ``timeout`` (default ``close_timeout_s``), publish offline, disconnect.

        Payloads still held at the deadline are counted as dropped and logged as an error. If the
        ``offline`` message cannot be confirmed, the connection is cut without a DISCONNECT so that
        the broker publishes the last will instead.
        """
        timeout = self.config.close_timeout_s if timeout is None else timeout
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._deadline = time.monotonic() + timeout
            self._wake.notify_all()
        self._sender.join()
        with self._lock:
            undelivered = len(self._pending) + sum(1 for e in self._handed.values() if e.message.counted)
            self._dropped += undelivered
            self._pending.clear()
            self._handed.clear()
            connected = self._connected
        if undelivered:
            log.error("MQTT: %d payloads not delivered to %s before shutdown", undelivered, self._broker)
        confirmed = False
        if connected:
            info = self._client.publish(self.topics["available"], "offline", qos=AVAILABLE_QOS, retain=True)
            try:
                info.wait_for_publish(timeout=max(self._deadline - time.monotonic(), 1.0))
                confirmed = info.is_published()
            except (RuntimeError, ValueError):
                confirmed = False
        if confirmed:
            self._client.disconnect()
            self._client.loop_stop()
        else:
            self._client.loop_stop()
            sock = self._client.socket()
            if isinstance(sock, socket.socket):  # closed without DISCONNECT: the broker sends the last will
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        with self._lock:
            self._connected = False

    # -- the sender thread -------------------------------------------------------------------

    def _send_loop(self) -> None:
        while True:
            with self._lock:
                message = self._next_locked()
                if message is None:
                    return
                generation = self._generation
                self._handing_over = True
            try:
                info: mqtt.MQTTMessageInfo | None = self._client.publish(
                    message.topic, message.payload, message.qos, message.retain
                )
            except ValueError as exc:  # a payload over MQTT's 256 MiB limit
                log.error("MQTT: cannot publish on %s: %s", message.topic, exc)
                info = None
            with self._lock:
                self._handing_over = False
                if info is None:
                    self._dropped += message.counted
                else:
                    self._record_locked(message, generation, info)
                self._wake.notify_all()

    def _next_locked(self) -> _Message | None:
        """Wait for the next message to hand to paho; None when closing and done (or past the deadline)."""
        while True:
            self._settle_locked()
            if self._closing and (
                (not self._pending and not self._handed and self._sensor_state is None)
                or time.monotonic() >= self._deadline
            ):
                return None
            if self._connected and self._announce and not self._closing:
                self._announce = False
                state = b"online" if self._online else b"offline"
                return _Message(self.topics["available"], state, AVAILABLE_QOS, True, counted=False)
            if self._connected and self._discovery and not self._closing:
                return self._discovery.popleft()
            if self._connected and self._sensor_state is not None and self._ha_state_topic is not None:
                sensor, self._sensor_state = self._sensor_state, None
                return _Message(self._ha_state_topic, sensor, 1, True, counted=False)
            carried = any(entry.generation < self._generation for entry in self._handed.values())
            if self._connected and self._pending and not carried and len(self._handed) < INFLIGHT_WINDOW:
                message = self._pending.popleft()
                if not self._pending and self._overflowing:
                    self._overflowing = False
                    log.warning("MQTT: held payloads handed over; %d dropped so far (buffer full)", self._dropped)
                return message
            waiting_on_paho = bool(self._handed) or self._closing
            self._wake.wait(timeout=0.1 if waiting_on_paho else None)

    def _record_locked(self, message: _Message, generation: int, info: mqtt.MQTTMessageInfo) -> None:
        if message.qos == 0 and info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
            # paho does not keep QoS 0 messages while disconnected: back to the front, wait for on_connect.
            self._pending.appendleft(message)
            self._connected = False
        elif info.mid in self._early_acks:
            self._early_acks.discard(info.mid)
            self._delivered += message.counted
        else:
            self._handed[info.mid] = _Handed(message, generation, info)

    def _settle_locked(self) -> None:
        """Put QoS 0 messages that paho lost with a connection back at the front of the deque, in order."""
        lost = [
            mid
            for mid, entry in self._handed.items()
            if entry.message.qos == 0 and entry.info.rc == MQTTErrorCode.MQTT_ERR_CONN_LOST
        ]
        if lost:
            messages = [self._handed.pop(mid).message for mid in lost]
            self._pending.extendleft(reversed([m for m in messages if m.counted]))

    # -- paho callbacks (network thread) -----------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            log.error("MQTT broker %s refused the connection: %s", self._broker, reason)
            return
        with self._lock:
            self._connected = True
            self._generation += 1
            self._announce = True
            self._discovery = deque(self._discovery_messages())
            self._unreachable_logged = False
            held = len(self._pending)
            self._wake.notify_all()
        log.info("MQTT connected to %s (%d payloads held)", self._broker, held)

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        with self._lock:
            while self._handing_over:
                self._wake.wait()

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        with self._lock:
            generation = self._generation
        timer = threading.Timer(CONNACK_TIMEOUT_S, self._check_answered, args=(generation,))
        timer.daemon = True
        timer.start()

    def _check_answered(self, generation: int) -> None:
        """Log a broker that took the TCP connection but has not answered CONNECT (not MQTT, or stuck)."""
        with self._lock:
            silent = not self._connected and not self._closing and self._generation == generation
        if silent:
            log.warning("MQTT broker %s accepted the TCP connection but has not answered CONNECT within %.0f s "
                        "(not an MQTT broker, or overloaded); payloads are held meanwhile", self._broker,
                        CONNACK_TIMEOUT_S)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        with self._lock:
            first, self._unreachable_logged = not self._unreachable_logged, True
        log.log(logging.WARNING if first else logging.DEBUG, "MQTT broker %s unreachable; retrying", self._broker)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        with self._lock:
            was_connected, self._connected = self._connected, False
            closing = self._closing
            self._wake.notify_all()
        if was_connected and not closing:
            log.warning("MQTT connection to %s lost (%s); holding payloads", self._broker, reason)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._lock:
            entry = self._handed.pop(mid, None)
            if entry is None:
                self._early_acks.add(mid)
            else:
                self._delivered += entry.message.counted
            self._wake.notify_all()
