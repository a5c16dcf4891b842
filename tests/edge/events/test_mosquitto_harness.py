"""The test harness's persistent subscriber behaves like a real persistent consumer across a broker restart."""

from __future__ import annotations

import time

import paho.mqtt.client as mqtt
from mosquitto import MosquittoBroker, Subscriber
from paho.mqtt.enums import CallbackAPIVersion


def test_a_retained_message_queued_while_away_arrives_once_after_the_reconnect(
        mosquitto_broker: MosquittoBroker) -> None:
    subscriber = Subscriber(mosquitto_broker, "harness/#", persistent=True)
    try:
        subscriber.client.loop_stop()           # away: the broker keeps the session and queues for it
        mosquitto_broker.restart()
        publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="harness-publisher")
        publisher.connect(mosquitto_broker.host, mosquitto_broker.port)
        publisher.loop_start()
        publisher.publish("harness/state", b"latest", qos=1, retain=True).wait_for_publish(5)
        publisher.disconnect()
        publisher.loop_stop()
        subscriber.client.reconnect()
        subscriber.client.loop_start()
        subscriber.wait_for(lambda ms: len(ms) >= 1)
        time.sleep(0.5)                         # a second copy would be here by now
        assert [m.payload for m in subscriber.messages] == [b"latest"]
    finally:
        subscriber.close()
