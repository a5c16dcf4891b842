"""Envelope sequence numbers, the JSON lines sink (real stdout of a real process) and the payload schemas."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import threading
from typing import Any

import jsonschema
import pytest
from payloads import BODIES, event_body, stats_body, validate

from edge.config.schema import OutputConfig
from edge.events.envelope import ENVELOPE_KEYS, SCHEMA_VERSIONS, Envelope, json_schema
from edge.events.factory import make_sink
from edge.events.jsonlines import JsonLinesSink
from edge.taxonomy import EMOTIONS, UNCERTAIN


def test_sequence_numbers_are_per_topic_from_one_without_gaps_under_threads() -> None:
    envelope = Envelope("dev", clock=lambda: 1700000000.5)
    seen: dict[str, list[int]] = {"events": [], "stats": []}
    lock = threading.Lock()

    def worker(topic: str) -> None:
        for _ in range(500):
            seq = envelope.wrap(topic, {})["seq"]
            with lock:
                seen[topic].append(seq)

    threads = [threading.Thread(target=worker, args=(topic,)) for topic in ("events", "stats") * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen["events"]) == list(range(1, 2001))
    assert sorted(seen["stats"]) == list(range(1, 2001))
    assert envelope.wrap("state", {"speech_active": False}) == {
        "schema": "emotion-edge/state/4",
        "ts": 1700000000.5,
        "device": "dev",
        "seq": 1,
        "speech_active": False,
    }


def test_envelope_refuses_unknown_topics_and_envelope_keys_in_the_body() -> None:
    envelope = Envelope("dev")
    with pytest.raises(ValueError, match="unknown topic 'available'"):
        envelope.wrap("available", {})
    with pytest.raises(ValueError, match=r"must not contain the envelope keys \['seq'\]"):
        envelope.wrap("events", {"seq": 3})


def test_json_lines_are_in_sequence_order_and_validate_under_concurrent_publishers() -> None:
    stream = io.StringIO()
    sink = JsonLinesSink(Envelope("kiosk"), stream)

    def worker() -> None:
        for _ in range(50):
            for topic, body in BODIES.items():
                sink.publish(topic, body())  # type: ignore[arg-type]

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sink.available(True)  # writes nothing: availability is a broker notion
    sink.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 * 200
    by_topic: dict[str, list[int]] = {topic: [] for topic in BODIES}
    for line in lines:
        payload = json.loads(line)
        topic = payload["schema"].split("/")[1]
        validate(topic, payload)
        by_topic[topic].append(payload["seq"])
    for topic, seqs in by_topic.items():
        assert seqs == list(range(1, 201)), topic
    assert sink.stats() == {"buffered": 0, "dropped": 0, "delivered": 600, "connected": True}
    with pytest.raises(RuntimeError, match="closed"):
        sink.publish("events", event_body())


def test_nan_is_refused_not_published() -> None:
    stream = io.StringIO()
    sink = JsonLinesSink(Envelope("dev"), stream)
    body = stats_body()
    body["fps"] = math.nan
    with pytest.raises(ValueError, match="JSON compliant"):
        sink.publish("stats", body)
    assert stream.getvalue() == ""


def test_without_a_broker_payloads_are_flushed_json_lines_on_the_real_stdout() -> None:
    script = (
        "import sys, time\n"
        "sys.path.insert(0, 'tests')\n"
        "from payloads import event_body\n"
        "from edge.config.schema import OutputConfig\n"
        "from edge.events.factory import make_sink\n"
        "sink = make_sink(OutputConfig(device='pi'))\n"
        "sink.publish('events', event_body())\n"
        "time.sleep(30)\n"  # still running when the line is read: it was flushed, not buffered
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
    finally:
        process.kill()
        process.wait()
    payload = validate("events", line)
    assert payload["device"] == "pi" and payload["seq"] == 1 and payload["label"] == "happy"


def test_make_sink_without_a_broker_is_json_lines_with_the_hostname_as_device() -> None:
    import socket

    stream = io.StringIO()
    sink = make_sink(OutputConfig(), stream)
    assert isinstance(sink, JsonLinesSink)
    with sink:
        sink.publish("state", BODIES["state"]())
    assert json.loads(stream.getvalue())["device"] == socket.gethostname()


def _envelope_part(schema: dict[str, Any]) -> dict[str, Any]:
    properties = dict(schema["properties"])
    properties.pop("schema")
    return {key: properties[key] for key in ENVELOPE_KEYS if key in properties}


def test_schemas_are_valid_2020_12_and_share_one_envelope() -> None:
    schemas = {name: json_schema(name) for name in ("events", "state", "stats", "available")}
    for name, schema in schemas.items():
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)
        if name != "available":
            assert schema["properties"]["schema"] == {
                "const": f"emotion-edge/{name}/{SCHEMA_VERSIONS[name]}",
                "description": schemas["events"]["properties"]["schema"]["description"],
            }
            assert set(ENVELOPE_KEYS) <= set(schema["required"])
    assert _envelope_part(schemas["events"]) == _envelope_part(schemas["state"]) == _envelope_part(schemas["stats"])
    assert schemas["events"]["$defs"]["label"]["enum"] == schemas["state"]["$defs"]["label"]["enum"] == [
        *EMOTIONS, UNCERTAIN, None]
    track = schemas["state"]["properties"]["tracks"]["items"]["properties"]
    assert track["fusion"]["enum"] == schemas["events"]["properties"]["fusion"]["enum"]
    assert all(schema["$id"].endswith(f":{SCHEMA_VERSIONS[name]}") for name, schema in schemas.items()
               if name != "available")
    assert schemas["events"]["properties"]["posterior"]["required"] == list(EMOTIONS)
    with pytest.raises(ValueError, match="no schema"):
        json_schema("nope")


def test_available_is_plain_text_online_or_offline() -> None:
    assert validate("available", b"online") == "online"
    assert validate("available", b"offline") == "offline"
    with pytest.raises(jsonschema.ValidationError):
        validate("available", b'"online"')


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"mood": "x"}, "Additional properties"),
        ({"label": "calm"}, "is not one of"),
        ({"fusion": "face_only"}, "\\['face'\\] was expected"),
        ({"track_id": 0, "fusion": "decision"}, "'speech_only' was expected"),
        ({"posterior": {"happy": 1.0}}, "'neutral' is a required property"),
        ({"confidence": 1.5}, "greater than the maximum"),
        ({"event": "face_seen"}, "is not one of"),
    ],
)
def test_the_event_schema_rejects_what_the_contract_forbids(change: dict[str, Any], why: str) -> None:
    payload = {**Envelope("dev").wrap("events", event_body()), **change}
    with pytest.raises(jsonschema.ValidationError, match=why):
        validate("events", payload)


def test_voice_only_and_unclassified_events_validate() -> None:
    envelope = Envelope("dev")
    voice = {**event_body(track_id=0), "modalities": ["speech"], "fusion": "speech_only", "speech_attribution": "none"}
    validate("events", envelope.wrap("events", voice))
    unclassified = {**event_body(event="track_lost"), "label": None, "confidence": 0.0, "modalities": []}
    validate("events", envelope.wrap("events", {**unclassified, "fusion": "none"}))
    with pytest.raises(jsonschema.ValidationError):
        validate("events", envelope.wrap("events", {**unclassified, "fusion": "face_only"}))
    with pytest.raises(jsonschema.ValidationError):
        validate("events", envelope.wrap("events", {**event_body(), "fusion": "none", "modalities": []}))
