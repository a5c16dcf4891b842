"""MqttSink against a real mosquitto and a real paho subscriber: availability, order, buffering, overflow, shutdown."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import REPO_ROOT
from mosquitto import MosquittoBroker, Received, Subscriber
from payloads import BODIES, event_body, validate

from edge.config.schema import OutputConfig
from edge.events.envelope import Envelope
from edge.events.factory import make_sink
from edge.events.mqtt import MqttSink, broker_address


def output(broker: MosquittoBroker, **changes: Any) -> OutputConfig:
    settings: dict[str, Any] = {
        "mqtt_url": broker.url,
        "device": "test-dev",
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.3,
        "close_timeout_s": 3.0,
        **changes,
    }
    return OutputConfig(**settings)


def topic(name: str, device: str = "test-dev") -> str:
    return f"emotion/{device}/{name}"


def parsed(messages: list[Received], name: str) -> list[dict[str, Any]]:
    return [validate(name, m.payload) for m in messages if m.topic == topic(name)]


def count_on(name: str, n: int) -> Any:
    return lambda messages: sum(m.topic == topic(name) for m in messages) >= n


def wait_until(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        time.sleep(0.01)


@pytest.fixture
def subscriber(mosquitto_broker: MosquittoBroker) -> Iterator[Subscriber]:
    sub = Subscriber(mosquitto_broker, "emotion/#", persistent=True)
    yield sub
    sub.close()


def test_online_events_state_and_stats_with_their_qos_retain_and_schemas(
    mosquitto_broker: MosquittoBroker, subscriber: Subscriber
) -> None:
    sink = make_sink(output(mosquitto_broker))
    assert isinstance(sink, MqttSink)
    subscriber.wait_for(lambda ms: any(m.topic == topic("available") and m.payload == b"online" for m in ms))
    for i in range(20):
        sink.publish("events", event_body(track_id=1 + i % 3))
    sink.publish("state", BODIES["state"]())
    sink.publish("stats", BODIES["stats"]())
    # QoS 0 stats may overtake the QoS 1 state: wait for every topic the assertions read
    messages = subscriber.wait_for(
        lambda ms: count_on("events", 20)(ms) and count_on("state", 1)(ms) and count_on("stats", 1)(ms))
    events = parsed(messages, "events")
    assert [e["seq"] for e in events] == list(range(1, 21))
    assert all(e["device"] == "test-dev" for e in events)
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
    assert {m.qos for m in messages if m.topic == topic("events")} == {1}
    assert {m.qos for m in messages if m.topic == topic("stats")} == {0}
    assert parsed(messages, "state")[0]["seq"] == 1 and parsed(messages, "stats")[0]["seq"] == 1
    wait_until(lambda: sink.stats()["delivered"] == 22)
    assert sink.stats() == {"buffered": 0, "dropped": 0, "delivered": 22, "connected": True}

    # A subscriber that comes later gets the retained availability and state, and no events.
    late = Subscriber(mosquitto_broker, "emotion/#")
    try:
        retained = late.wait_for(lambda ms: count_on("available", 1)(ms) and count_on("state", 1)(ms))
        assert {(m.topic, m.retain) for m in retained} == {(topic("available"), True), (topic("state"), True)}
        assert validate("available", late.on(topic("available"))[0].payload) == "online"
    finally:
        late.close()
    sink.close()


def test_close_publishes_offline_retained(mosquitto_broker: MosquittoBroker, subscriber: Subscriber) -> None:
    sink = make_sink(output(mosquitto_broker))
    subscriber.wait_for(count_on("available", 1))
    sink.publish("events", event_body())
    sink.close()
    assert sink.stats() == {"buffered": 0, "dropped": 0, "delivered": 1, "connected": False}
    messages = subscriber.wait_for(lambda ms: any(m.payload == b"offline" for m in ms))
    assert [m.payload for m in messages if m.topic == topic("available")] == [b"online", b"offline"]
    late = Subscriber(mosquitto_broker, topic("available"))
    try:
        assert late.wait_for(lambda ms: len(ms) == 1)[0].payload == b"offline"
    finally:
        late.close()
    with pytest.raises(RuntimeError, match="closed"):
        sink.publish("events", event_body())


def test_available_false_then_true(mosquitto_broker: MosquittoBroker, subscriber: Subscriber) -> None:
    sink = make_sink(output(mosquitto_broker))
    subscriber.wait_for(count_on("available", 1))
    sink.available(False)
    subscriber.wait_for(count_on("available", 2))
    sink.available(True)
    messages = subscriber.wait_for(count_on("available", 3))
    assert [m.payload for m in messages if m.topic == topic("available")] == [b"online", b"offline", b"online"]
    sink.close()


SINK_PROCESS = """
import sys, time
sys.path.insert(0, "tests")
from payloads import event_body
from edge.config.schema import OutputConfig
from edge.events.factory import make_sink
sink = make_sink(OutputConfig(mqtt_url=sys.argv[1], device="doomed", keepalive_s=60))
sink.publish("events", event_body())
while sink.stats()["delivered"] < 1:
    time.sleep(0.01)
print("published", flush=True)
time.sleep(60)
"""


def test_last_will_offline_when_the_process_is_killed(mosquitto_broker: MosquittoBroker) -> None:
    watcher = Subscriber(mosquitto_broker, "emotion/doomed/#")
    process = subprocess.Popen(
        [sys.executable, "-c", SINK_PROCESS, mosquitto_broker.url], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "published"
        watcher.wait_for(lambda ms: any(m.payload == b"online" for m in ms))
        process.kill()  # SIGKILL: no chance to publish offline itself
        process.wait()
        messages = watcher.wait_for(lambda ms: ms[-1].payload == b"offline", timeout=5)
        assert [m.payload for m in messages if m.topic == "emotion/doomed/available"] == [b"online", b"offline"]
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        watcher.close()


def test_broker_down_at_start_every_event_is_delivered_in_order_once_it_is_up(
    mosquitto_broker: MosquittoBroker, subscriber: Subscriber
) -> None:
    mosquitto_broker.stop()  # the subscriber's persistent session survives in the broker's persistence file
    sink = make_sink(output(mosquitto_broker))
    for i in range(30):
        sink.publish("events", event_body(track_id=i + 1))
    sink.publish("state", BODIES["state"]())
    time.sleep(0.3)  # several failed connection attempts
    assert sink.stats() == {"buffered": 31, "dropped": 0, "delivered": 0, "connected": False}
    mosquitto_broker.start()
    messages = subscriber.wait_for(count_on("events", 30), timeout=30)
    events = parsed(messages, "events")
    assert [e["seq"] for e in events] == list(range(1, 31))
    assert [e["track_id"] for e in events] == list(range(1, 31))
    wait_until(lambda: sink.stats()["delivered"] == 31)
    assert sink.stats() == {"buffered": 0, "dropped": 0, "delivered": 31, "connected": True}
    sink.close()


def test_broker_restart_mid_run_keeps_order_without_loss(
    mosquitto_broker: MosquittoBroker, subscriber: Subscriber
) -> None:
    sink = make_sink(output(mosquitto_broker))
    seq = 0

    def publish(n: int) -> None:
        nonlocal seq
        for _ in range(n):
            seq += 1
            sink.publish("events", event_body(track_id=seq))
            sink.publish("stats", BODIES["stats"]())  # QoS 0: paho does not keep these; the sink does

    publish(10)
    wait_until(lambda: sink.stats()["delivered"] == 20)
    # Let the subscriber acknowledge them too: the broker would otherwise redeliver its unacknowledged
    # QoS 1 messages after the restart (at-least-once on the broker -> subscriber leg).
    subscriber.wait_for(count_on("events", 10))
    time.sleep(0.1)
    mosquitto_broker.stop()
    wait_until(lambda: not sink.stats()["connected"])
    publish(10)
    mosquitto_broker.start()
    publish(10)
    messages = subscriber.wait_for(lambda ms: count_on("events", 30)(ms) and count_on("stats", 30)(ms), timeout=30)
    assert [e["seq"] for e in parsed(messages, "events")] == list(range(1, 31))
    assert [e["seq"] for e in parsed(messages, "stats")] == list(range(1, 31))
    sink.close()
    assert sink.stats()["dropped"] == 0


def test_overflow_drops_the_oldest_and_counts_them(mosquitto_broker: MosquittoBroker, subscriber: Subscriber) -> None:
    mosquitto_broker.stop()
    sink = make_sink(output(mosquitto_broker, buffer_size=5))
    for i in range(12):
        sink.publish("events", event_body(track_id=i + 1))
    assert sink.stats() == {"buffered": 5, "dropped": 7, "delivered": 0, "connected": False}
    mosquitto_broker.start()
    messages = subscriber.wait_for(count_on("events", 5), timeout=30)
    wait_until(lambda: sink.stats()["delivered"] == 5)
    time.sleep(0.2)  # nothing else arrives
    assert [e["seq"] for e in parsed(subscriber.messages, "events")] == [8, 9, 10, 11, 12]
    assert len(parsed(messages, "events")) == 5
    assert sink.stats() == {"buffered": 0, "dropped": 7, "delivered": 5, "connected": True}
    sink.close()


def test_concurrent_publishers_reach_the_broker_in_sequence_order(
    mosquitto_broker: MosquittoBroker, subscriber: Subscriber
) -> None:
    sink = make_sink(output(mosquitto_broker))
    threads = [
        threading.Thread(target=lambda: [sink.publish("events", event_body()) for _ in range(50)]) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    messages = subscriber.wait_for(count_on("events", 200), timeout=30)
    assert [e["seq"] for e in parsed(messages, "events")] == list(range(1, 201))
    sink.close()


def test_close_with_the_broker_gone_gives_up_after_the_timeout_and_counts_the_loss(
    mosquitto_broker: MosquittoBroker,
) -> None:
    mosquitto_broker.stop()
    sink = MqttSink(output(mosquitto_broker), Envelope("test-dev"))
    for _ in range(3):
        sink.publish("events", event_body())
    started = time.monotonic()
    sink.close(timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 2.0
    assert sink.stats() == {"buffered": 0, "dropped": 3, "delivered": 0, "connected": False}


def test_username_and_password_are_sent(tmp_path_factory: pytest.TempPathFactory) -> None:
    broker = MosquittoBroker(tmp_path_factory.mktemp("mosquitto-auth"))
    passwords = broker.workdir / "passwords"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "edge", "s3cret"], check=True)
    broker.conf.write_text(
        broker.conf.read_text().replace("allow_anonymous true", f"allow_anonymous false\npassword_file {passwords}")
    )
    broker.start()
    try:
        refused = make_sink(output(broker, username="edge", password="wrong"))
        good = make_sink(output(broker, username="edge", password="s3cret"))
        good.publish("events", event_body())
        wait_until(lambda: good.stats()["delivered"] == 1)
        assert refused.stats()["connected"] is False
        refused.close(timeout=0.1)
        good.close()
    finally:
        broker.stop()


def test_broker_urls() -> None:
    assert broker_address("mqtt://127.0.0.1") == ("127.0.0.1", 1883, False)
    assert broker_address("mqtts://broker.lan:9999") == ("broker.lan", 9999, True)
    with pytest.raises(ValueError, match="not an mqtt"):
        broker_address("tcp://x")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")
def test_tls_with_a_ca_file_verifies_the_broker(tmp_path_factory: pytest.TempPathFactory) -> None:
    workdir = tmp_path_factory.mktemp("mosquitto-tls")
    cert, key = workdir / "broker.crt", workdir / "broker.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    broker = MosquittoBroker(workdir)
    broker.conf.write_text(broker.conf.read_text() + f"certfile {cert}\nkeyfile {key}\n")
    broker.start()
    try:
        url = f"mqtts://127.0.0.1:{broker.port}"
        trusted = make_sink(output(broker, mqtt_url=url, tls_ca=cert, device="tls-dev"))
        untrusted = make_sink(output(broker, mqtt_url=url, device="tls-other"))  # system CAs: not this one
        trusted.publish("events", event_body())
        wait_until(lambda: trusted.stats()["delivered"] == 1)
        assert trusted.stats()["connected"] and not untrusted.stats()["connected"]
        trusted.close()
        untrusted.close(timeout=0.1)
        assert "tls-dev" in broker.log.read_text()
    finally:
        broker.stop()


def test_a_broker_that_never_answers_connect_is_logged(monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    import socket

    monkeypatch.setattr("edge.events.mqtt.CONNACK_TIMEOUT_S", 0.5)
    with socket.socket() as silent:   # takes TCP connections, says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        port = silent.getsockname()[1]
        sink = MqttSink(OutputConfig(mqtt_url=f"mqtt://127.0.0.1:{port}", device="test-dev"), Envelope("test-dev"))
        try:
            wait_until(lambda: "has not answered CONNECT" in caplog.text, timeout=10)
        finally:
            sink.close(timeout=0.2)
    assert f"127.0.0.1:{port}" in caplog.text


def test_one_online_per_connection(mosquitto_broker: MosquittoBroker, subscriber: Subscriber) -> None:
    sink = make_sink(output(mosquitto_broker))
    subscriber.wait_for(count_on("available", 1))
    sink.available(True)        # what the daemon does when it starts: already online, nothing more to say
    sink.publish("events", event_body())
    subscriber.wait_for(count_on("events", 1))
    sink.close()
    messages = subscriber.wait_for(lambda ms: any(m.payload == b"offline" for m in ms))
    assert [m.payload for m in messages if m.topic == topic("available")] == [b"online", b"offline"]


def test_a_full_buffer_gives_up_stats_then_old_states_then_events(
        mosquitto_broker: MosquittoBroker, subscriber: Subscriber) -> None:
    mosquitto_broker.stop()
    sink = make_sink(output(mosquitto_broker, buffer_size=5))
    for topic_name in ("events", "events", "stats", "state", "events", "events", "events", "state"):
        sink.publish(topic_name, BODIES[topic_name]() if topic_name != "events" else event_body())
    assert sink.stats()["buffered"] == 5 and sink.stats()["dropped"] == 3
    mosquitto_broker.start()
    messages = subscriber.wait_for(lambda ms: count_on("events", 4)(ms) and count_on("state", 1)(ms), timeout=30)
    time.sleep(0.3)
    assert [e["seq"] for e in parsed(messages, "events")] == [2, 3, 4, 5]   # the oldest event went last
    assert [s["seq"] for s in parsed(messages, "state")] == [2]              # the newer state superseded seq 1
    assert parsed(subscriber.messages, "stats") == []                      # stats went first
    sink.close()
