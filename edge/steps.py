"""Wall and CPU time of each step of the daemon's threads (decode, detect, align, MFCC, publish ...).

The stages and sources wrap their steps in ``with step("name"):``. Nothing is recorded unless a
profile is running (``PROFILE.start()``, as ``emotion-edge bench`` does): outside one, ``step``
hands back one shared no-op context, so the daemon pays a function call per step. Inside one, each
step records its wall time (``time.perf_counter``) and the CPU time of the thread that ran it
(``time.thread_time``), under that thread's name. CPU that a step causes on other threads (an
ONNX Runtime or OpenCV worker pool) is not the calling thread's, so it shows in the pools' own
row of the bench's per-thread table, not in the step. Steps do not nest: each is a leaf, so a
thread's steps add up to at most its CPU and the rest is that thread's own overhead.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_IDLE = contextlib.nullcontext()


@dataclass
class _Samples:
    wall_s: list[float] = field(default_factory=list)
    cpu_s: float = 0.0


class _Timed:
    """The context of one step inside a running profile."""

    __slots__ = ("_profile", "_name", "_wall", "_cpu")

    def __init__(self, profile: StepProfile, name: str) -> None:
        self._profile, self._name = profile, name

    def __enter__(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.thread_time()

    def __exit__(self, *exc: object) -> None:
        self._profile.record(self._name, time.perf_counter() - self._wall, time.thread_time() - self._cpu)


class StepProfile:
    """Samples of every step, by (thread name, step name), while ``active``."""

    def __init__(self) -> None:
        self.active = False
        self._steps: dict[tuple[str, str], _Samples] = {}
        self._observed: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        """Forget what was recorded and record from now on."""
        with self._lock:
            self._steps, self._observed = {}, {}
            self.active = True

    def stop(self) -> None:
        self.active = False

    def step(self, name: str) -> contextlib.AbstractContextManager[None]:
        """A context timing ``name`` on the calling thread (a no-op while no profile runs)."""
        return _Timed(self, name) if self.active else _IDLE

    def record(self, name: str, wall_s: float, cpu_s: float) -> None:
        key = (threading.current_thread().name, name)
        with self._lock:
            samples = self._steps.setdefault(key, _Samples())
            samples.wall_s.append(wall_s)
            samples.cpu_s += cpu_s

    def observe(self, name: str, seconds: float) -> None:
        """Record a duration that is no step of one thread (capture to publication, across threads)."""
        if self.active:
            with self._lock:
                self._observed.setdefault(name, []).append(seconds)

    def observed_ms(self, name: str) -> list[float]:
        """The durations observed as ``name``, in milliseconds, in the order they came."""
        with self._lock:
            return [round(seconds * 1000, 3) for seconds in self._observed.get(name, [])]

    def rows(self, duration_s: float) -> list[dict[str, Any]]:
        """Per step: thread, calls, calls per second, wall p50/p95/p99/max (ms), CPU seconds and % of one core."""
        with self._lock:
            steps = {key: (np.array(s.wall_s) * 1000, s.cpu_s) for key, s in self._steps.items()}
        rows = []
        for (thread, name), (wall_ms, cpu_s) in sorted(steps.items(), key=lambda item: -item[1][1]):
            rows.append({"step": name, "thread": thread, "calls": len(wall_ms),
                         "per_s": round(len(wall_ms) / duration_s, 2), **percentiles_ms(wall_ms),
                         "cpu_s": round(cpu_s, 3), "cpu_percent_of_one_core": round(100 * cpu_s / duration_s, 2)})
        return rows


def percentiles_ms(values_ms: Sequence[float] | np.ndarray) -> dict[str, float | None]:
    """``p50_ms``, ``p95_ms``, ``p99_ms`` and ``max_ms`` of durations in milliseconds (None without any)."""
    if len(values_ms) == 0:
        return dict.fromkeys(("p50_ms", "p95_ms", "p99_ms", "max_ms"))
    p50, p95, p99, top = np.percentile(np.asarray(values_ms, dtype=np.float64), [50, 95, 99, 100])
    return {"p50_ms": round(float(p50), 3), "p95_ms": round(float(p95), 3), "p99_ms": round(float(p99), 3),
            "max_ms": round(float(top), 3)}


END_TO_END = "capture -> publish"
"""What the fusion stage observes for every fused result: its capture stamp to the fusion's output."""

PROFILE = StepProfile()
"""The process's one profile: the daemon's threads all record into it."""


def step(name: str) -> contextlib.AbstractContextManager[None]:
    """``PROFILE.step(name)``: time a step of the calling thread while a profile runs."""
    return PROFILE.step(name)
