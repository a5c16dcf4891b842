"""``emotion-edge soak``: runs the daemon for a long time and watches its memory, file descriptors and threads.

The daemon runs as a child process (``emotion-edge run`` with the given flags; default: the demo
clip looped in real time, JSON lines to /dev/null), sampled every ``interval`` seconds from
``/proc/<pid>``: resident memory, open file descriptors, threads. After a warm-up, a leak shows as
a slope: the result gives the least-squares RSS slope (MiB per minute) and the ranges of the fd and
thread counts, and whether the daemon was still running at the end (then it is stopped with
SIGTERM and its exit status recorded). Linux only (``/proc``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def sample(pid: int) -> dict[str, float]:
    """RSS (MiB), open fds and threads of a running process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status if ":" in line)
    return {"rss_mib": round(int(fields["VmRSS"].split()[0]) / 1024, 2), "threads": int(fields["Threads"]),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def soak(run_args: list[str], seconds: float, interval: float = 5.0, warmup: float = 30.0) -> dict[str, Any]:
    """Run ``emotion-edge run <run_args>`` for ``seconds`` and summarise its samples (see the module docstring)."""
    command = [sys.executable, "-m", "edge.app.cli", "run", *run_args]
    with open(os.devnull, "w") as devnull:
        process = subprocess.Popen(command, stdout=devnull, stderr=subprocess.PIPE, text=True)
        started, samples = time.monotonic(), []
        while time.monotonic() - started < seconds and process.poll() is None:
            time.sleep(interval)
            try:
                samples.append({"t": round(time.monotonic() - started, 1), **sample(process.pid)})
            except (FileNotFoundError, ProcessLookupError):
                break
        alive = process.poll() is None
        if alive:
            process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    steady = [s for s in samples if s["t"] >= warmup] or samples
    slope = None
    if len(steady) >= 2:
        minutes = np.array([s["t"] for s in steady]) / 60
        slope = float(np.polyfit(minutes, np.array([s["rss_mib"] for s in steady]), 1)[0])
    return {
        "command": command, "seconds": seconds, "interval_s": interval, "warmup_s": warmup,
        "alive_at_end": alive, "exit_status": process.returncode, "stderr_tail": stderr.splitlines()[-5:],
        "rss_slope_mib_per_min": slope,
        "rss_mib": [round(min(s["rss_mib"] for s in steady), 1), round(max(s["rss_mib"] for s in steady), 1)]
        if steady else None,
        "fds": [min(s["fds"] for s in steady), max(s["fds"] for s in steady)] if steady else None,
        "threads": [min(s["threads"] for s in steady), max(s["threads"] for s in steady)] if steady else None,
        "samples": samples,
    }
