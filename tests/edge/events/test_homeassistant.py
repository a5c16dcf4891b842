"""Home Assistant MQTT discovery against a real mosquitto: the retained sensor config, its state, its removal."""

from __future__ import annotations

import json

from mosquitto import MosquittoBroker, Subscriber
from test_mqtt import output

from edge.events.envelope import Envelope
from edge.events.homeassistant import discovery_topic, sensor_state, state_topic
from edge.events.mqtt import MqttSink

CONFIG_TOPIC = discovery_topic("homeassistant", "test-dev")
SENSOR_TOPIC = state_topic("emotion", "test-dev")


def _state(*tracks: tuple[int, str | None, float, str]) -> dict:
    return {"tracks": [{"track_id": t, "label": label, "confidence": c, "fusion": fusion, "since_ts": 1.0}
                       for t, label, c, fusion in tracks], "speech_active": True}


def test_the_most_confident_named_track_is_the_sensor_state() -> None:
    state = sensor_state(_state((1, "happy", 0.6, "face_only"), (2, "sad", 0.8, "model"), (3, None, 0.0, "none")))
    assert state == {"emotion": "sad", "confidence": 0.8, "track_id": 2, "modalities": ["face", "speech"],
                     "fusion": "model", "track_count": 3, "speech_active": True}
    assert sensor_state(_state())["emotion"] == "none"


def test_discovery_config_and_state_reach_the_broker_retained_and_go_away_when_switched_off(
        mosquitto_broker: MosquittoBroker) -> None:
    watcher = Subscriber(mosquitto_broker, "#")
    sink = MqttSink(output(mosquitto_broker, homeassistant=True), Envelope("test-dev"))
    try:
        sink.publish("state", _state((1, "angry", 0.9, "decision")))
        messages = watcher.wait_for(lambda ms: any(m.topic == CONFIG_TOPIC for m in ms)
                                    and any(m.topic == SENSOR_TOPIC for m in ms))
    finally:
        sink.close()
    config = json.loads(next(m for m in messages if m.topic == CONFIG_TOPIC).payload)
    assert config["state_topic"] == SENSOR_TOPIC == config["json_attributes_topic"]
    assert config["availability_topic"] == "emotion/test-dev/available" and config["payload_available"] == "online"
    assert config["unique_id"] == "emotion_edge_test-dev_emotion" and config["device"]["identifiers"]
    assert config["value_template"] == "{{ value_json.emotion }}"
    assert json.loads(watcher.on(SENSOR_TOPIC)[-1].payload)["emotion"] == "angry"

    late = Subscriber(mosquitto_broker, "#")   # what Home Assistant gets when it (re)starts: the retained payloads
    try:
        retained = late.wait_for(lambda ms: {CONFIG_TOPIC, SENSOR_TOPIC, "emotion/test-dev/available"}
                                 <= {m.topic for m in ms})
        assert all(m.retain for m in retained if m.topic in (CONFIG_TOPIC, SENSOR_TOPIC))
        sensor = json.loads(next(m for m in retained if m.topic == SENSOR_TOPIC).payload)
        assert (sensor["emotion"], sensor["track_count"], sensor["modalities"]) == ("angry", 1, ["face", "speech"])
    finally:
        late.close()

    off = MqttSink(output(mosquitto_broker, homeassistant=False), Envelope("test-dev"))
    try:
        watcher.wait_for(lambda ms: any(m.topic == CONFIG_TOPIC and m.payload == b"" for m in ms))
        off.publish("state", _state((1, "happy", 0.9, "face_only")))
        watcher.wait_for(lambda ms: sum(m.topic == "emotion/test-dev/state" for m in ms) >= 1)
    finally:
        off.close()
        watcher.close()
    assert [m.payload for m in watcher.on(SENSOR_TOPIC)][1:] == [b""]   # switched off: cleared, no new state
    after = Subscriber(mosquitto_broker, "#")
    try:
        after.wait_for(lambda ms: any(m.topic == "emotion/test-dev/available" for m in ms))
        assert not after.on(CONFIG_TOPIC) and not after.on(SENSOR_TOPIC)   # nothing of the sensor is retained
    finally:
        after.close()
