"""Health measurements shared by the stages: counters, rolling percentiles and rates, thread-safe."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np


class PeriodPercentiles:
    """Samples of a measurement since the last ``take``, and their percentiles."""

    def __init__(self, max_samples: int = 100_000) -> None:
        self._samples: deque[float] = deque(maxlen=max_samples)
        self._lock = threading.Lock()

    def add(self, value: float) -> None:
        with self._lock:
            self._samples.append(value)

    def take(self) -> dict[str, float | None]:
        """``{"p50", "p99"}`` of the samples since the previous call (None without samples); starts a new period."""
        with self._lock:
            values = np.array(self._samples, dtype=np.float64)
            self._samples.clear()
        if values.size == 0:
            return {"p50": None, "p99": None}
        p50, p99 = np.percentile(values, [50, 99])
        return {"p50": round(float(p50), 3), "p99": round(float(p99), 3)}


class RateMeter:
    """Events per second since the previous ``rate`` call."""

    def __init__(self, start: float) -> None:
        self._count = 0
        self._since = start
        self.total = 0
        self._lock = threading.Lock()

    def tick(self, n: int = 1) -> None:
        with self._lock:
            self._count += n
            self.total += n

    def rate(self, now: float) -> float:
        with self._lock:
            elapsed = now - self._since
            value = self._count / elapsed if elapsed > 0 else 0.0
            self._count, self._since = 0, now
        return round(value, 3)
