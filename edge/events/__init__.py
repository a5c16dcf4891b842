"""Output of the daemon: payload envelopes, their JSON Schemas, and the sinks (MQTT, JSON lines on stdout)."""
