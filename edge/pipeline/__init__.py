"""The on-device pipeline: face, speech and fusion stages on their own threads, joined by bounded queues."""
