"""Choosing the sink of a run from ``[output]``, by the scheme of its URL.

``output.mqtt_url`` names the broker (``mqtt://``, ``mqtts://``); unset, payloads go to stdout
(the ``stdout:`` sink, JSON lines). A new output is a ``Sink`` subclass in its own module and one
entry in ``SINKS``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TextIO

from edge.config.schema import OutputConfig
from edge.errors import InputError
from edge.events.envelope import Envelope
from edge.events.jsonlines import JsonLinesSink
from edge.events.mqtt import MqttSink
from edge.events.sink import Sink

STDOUT_URL = "stdout:"
SINKS: dict[str, Callable[[OutputConfig, Envelope, TextIO | None], Sink]] = {
    "mqtt": lambda output, envelope, _: MqttSink(output, envelope),
    "mqtts": lambda output, envelope, _: MqttSink(output, envelope),
    "stdout": lambda _, envelope, stream: JsonLinesSink(envelope, stream),
}
"""URL scheme -> the sink for it, given the output settings, the envelope and (stdout) the stream."""


def device_id(output: OutputConfig) -> str:
    """The configured device id, else the hostname."""
    return output.device or socket.gethostname()


def sink_url(output: OutputConfig) -> str:
    """Where this configuration sends payloads: the broker URL, or ``stdout:``."""
    return output.mqtt_url or STDOUT_URL


def make_sink(output: OutputConfig, stream: TextIO | None = None) -> Sink:
    """The sink for ``sink_url(output)``; ``stream`` replaces stdout for the ``stdout:`` sink."""
    scheme = sink_url(output).partition(":")[0]
    if scheme not in SINKS:
        raise InputError(f"no sink for {sink_url(output)!r}: known schemes {', '.join(sorted(SINKS))}")
    return SINKS[scheme](output, Envelope(device_id(output)), stream)
