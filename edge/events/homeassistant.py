"""Home Assistant MQTT discovery: the device appears in Home Assistant with an emotion sensor.

With ``output.homeassistant = true`` the MQTT sink publishes, retained:

- ``<discovery_prefix>/sensor/<node>/emotion/config``: the sensor's discovery payload (Home
  Assistant's MQTT discovery conventions: ``unique_id``, ``device``, ``state_topic``,
  ``json_attributes_topic``, and the daemon's own availability topic and last will);
- ``<prefix>/<device>/homeassistant``: after every state payload, the sensor's state: the emotion
  of the most prominent track (the named track with the highest smoothed confidence; ``none``
  when no track has one) with its confidence, track id, modalities, fusion method and the number
  of tracks, as attributes.

With ``output.homeassistant = false`` it publishes an empty retained payload to the discovery
topic instead, which removes the sensor from Home Assistant (and nothing from a broker that
never had it).
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from typing import Any

SENSOR_OBJECT_ID = "emotion"
# The daemon's fusion method -> the modalities it used (state payloads carry the method only).
FUSION_MODALITIES: dict[str, list[str]] = {
    "model": ["face", "speech"], "decision": ["face", "speech"], "face_only": ["face"],
    "speech_only": ["speech"], "none": [],
}


def package_version() -> str:
    """This package's version (the sensor's ``sw_version``)."""
    try:
        return version("emotion-edge")
    except PackageNotFoundError:
        return "unknown"


def node_id(device: str) -> str:
    """Home Assistant's node id for a device: letters, digits, ``_`` and ``-`` only."""
    return "emotion_edge_" + re.sub(r"[^A-Za-z0-9_-]", "_", device)


def discovery_topic(discovery_prefix: str, device: str) -> str:
    return f"{discovery_prefix}/sensor/{node_id(device)}/{SENSOR_OBJECT_ID}/config"


def state_topic(prefix: str, device: str) -> str:
    return f"{prefix}/{device}/homeassistant"


def discovery_payload(prefix: str, device: str, version: str) -> dict[str, Any]:
    """The retained config payload of the emotion sensor."""
    node = node_id(device)
    return {
        "name": "Emotion",
        "unique_id": f"{node}_{SENSOR_OBJECT_ID}",
        "object_id": f"{node}_{SENSOR_OBJECT_ID}",
        "state_topic": state_topic(prefix, device),
        "value_template": "{{ value_json.emotion }}",
        "json_attributes_topic": state_topic(prefix, device),
        "availability_topic": f"{prefix}/{device}/available",
        "payload_available": "online",
        "payload_not_available": "offline",
        "icon": "mdi:emoticon-outline",
        "qos": 1,
        "device": {"identifiers": [node], "name": f"emotion-edge {device}", "manufacturer": "emotion-edge",
                   "model": "emotion-edge daemon", "sw_version": version},
    }


def sensor_state(state: dict[str, Any]) -> dict[str, Any]:
    """The sensor's state and attributes from a daemon state payload body."""
    tracks = state["tracks"]
    named = [track for track in tracks if track["label"] is not None]
    if not named:
        return {"emotion": "none", "confidence": 0.0, "track_id": None, "modalities": [], "fusion": "none",
                "track_count": len(tracks), "speech_active": state["speech_active"]}
    top = max(named, key=lambda track: (track["confidence"], -track["track_id"]))
    return {"emotion": top["label"], "confidence": top["confidence"], "track_id": top["track_id"],
            "modalities": FUSION_MODALITIES.get(top["fusion"], []), "fusion": top["fusion"],
            "track_count": len(tracks), "speech_active": state["speech_active"]}
