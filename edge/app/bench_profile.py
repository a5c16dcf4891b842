"""The bench's per-step profile: every step of every thread, and what each thread did outside its steps.

``profile_rows`` joins the step timings (``edge.steps``) with the CPU time of each thread
(``ThreadCpuSampler``): under each thread, its steps (calls, wall percentiles, CPU), then one
"(rest of the thread)" row with the thread's CPU that no step accounts for (queue hand-overs, the
replay's pacing and interleaving, Python between the steps); threads without steps (ONNX Runtime,
OpenCV and FFmpeg pools, threads that ended between samples) come as one row each. The CPU column
therefore adds up to the process's CPU time by construction, and the rest rows say how much of it
the named steps leave unexplained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

REST = "(rest of the thread)"
WHOLE = "(whole thread)"


def profile_rows(steps: Sequence[Mapping[str, Any]], cpu_s_by_thread: Mapping[str, float],
                 wall_s: float) -> list[dict[str, Any]]:
    """Rows of step, thread, calls, per_s, p50/p95/p99/max ms, cpu_s and % of one core (see the module docstring)."""
    rows: list[dict[str, Any]] = []
    # a thread that ended before its first sample has no row of its own: its CPU is in the sampler's remainder,
    # so its rest row is minus its steps, and the column still adds up to the process
    threads = {**{row["thread"]: 0.0 for row in steps}, **cpu_s_by_thread}
    for thread, thread_cpu in sorted(threads.items(), key=lambda item: -item[1]):
        own = [dict(row) for row in steps if row["thread"] == thread]
        rows.extend(own)
        rest = thread_cpu - sum(row["cpu_s"] for row in own)
        rows.append({"step": REST if own else WHOLE, "thread": thread, "cpu_s": round(rest, 3),
                     "cpu_percent_of_one_core": round(100 * rest / wall_s, 2)})
    return rows
