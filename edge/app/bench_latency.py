"""Latency and CPU benchmark of the daemon: a clip replayed in real time through the whole pipeline.

Measures, for every fused result, the time from capture (a frame or audio block entering the
pipeline) to publication, its p50/p99; the models' run time per batch; YuNet's detection time;
frames processed and dropped; the process's CPU time (user + system, from /proc/self/stat), the
CPU time of each thread (``/proc/self/task``, sampled while the run lasts: the capture and stage
threads by name, the threads ONNX Runtime and the decoders start as one row, and what threads that
ended between two samples used as the remainder, so that the rows add up to the process) and peak
resident memory (VmHWM from /proc/self/status) over the run. Payloads go to an
in-memory JSON lines sink; the stats period is longer than the run, so the final stats message
covers all of it. Every step of every thread (decode, colour conversion, detection, alignment, the
models, MFCC, fusion, publication ...) is timed too (``edge.steps``), wall percentiles and CPU, in a
profile whose CPU column adds up to the process's (``edge.app.bench_profile``). ``emotion-edge bench``
prints the tables and writes the numbers as JSON.

``run_variants`` compares configurations side by side: each runs ``rounds`` times, the variants
alternating within every round (A B C, A B C, ...), so that a change of load on the machine hits
them all alike; the comparison gives each variant's median over its rounds.
"""

from __future__ import annotations

import functools
import io
import json
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import onnxruntime

from edge.app.bench_profile import profile_rows
from edge.app.daemon import Daemon
from edge.app.text_table import format_table as format_rows
from edge.config.schema import Config
from edge.events.envelope import Envelope
from edge.events.jsonlines import JsonLinesSink
from edge.steps import END_TO_END, PROFILE, percentiles_ms


def process_cpu_seconds() -> float:
    """User + system CPU time of this process so far (all threads), from /proc/self/stat."""
    return _cpu_of_stat(Path("/proc/self/stat").read_text())


NATIVE_THREADS = "native threads (ONNX Runtime pools, decoders)"
REMAINDER = "threads that ended between samples"


def _cpu_of_stat(text: str) -> float:
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds() -> dict[int, float]:
    """User + system CPU time of each live thread of this process, by native thread id (/proc/self/task)."""
    seconds = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            seconds[int(task.name)] = _cpu_of_stat((task / "stat").read_text())
        except (OSError, IndexError, ValueError):
            continue   # the thread ended while being read
    return seconds


class ThreadCpuSampler:
    """Samples every thread's CPU time while it runs, so that threads gone by the end still count."""

    def __init__(self, period_s: float = 0.2) -> None:
        self.period_s = period_s
        self._last: dict[int, float] = {}
        self._names: dict[int, str] = {}
        self.process_seconds = 0.0
        """Process CPU time (all threads) between entering and leaving the ``with`` block."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-cpu-sampler", daemon=True)

    def _sample(self) -> None:
        self._names.update({t.native_id: t.name for t in threading.enumerate() if t.native_id is not None})
        self._last.update(thread_cpu_seconds())

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self._sample()

    def __enter__(self) -> ThreadCpuSampler:
        self._start = {**thread_cpu_seconds()}
        self._process_start = process_cpu_seconds()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.process_seconds = process_cpu_seconds() - self._process_start

    def by_thread(self) -> dict[str, float]:
        """CPU seconds during the run per thread name (native threads as one row); the rows add up to the
        process CPU time, the remainder being ``REMAINDER``."""
        rows: dict[str, float] = {}
        for tid, seconds in self._last.items():
            name = self._names.get(tid, NATIVE_THREADS)
            rows[name] = rows.get(name, 0.0) + seconds - self._start.get(tid, 0.0)
        rows[REMAINDER] = max(0.0, self.process_seconds - sum(rows.values()))
        return {name: round(value, 3) for name, value in sorted(rows.items(), key=lambda item: -item[1])}


def peak_rss_mib() -> float:
    """Peak resident memory of this process (VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_benchmark(config: Config, seconds: float) -> dict[str, Any]:
    """Run the daemon for ``seconds`` (or until its source ends) and return the measurements."""
    config = replace(config, output=replace(config.output, mqtt_url=None, stats_interval_s=1e6, state_interval_s=1e6))
    stream = io.StringIO()
    daemon = Daemon(config, JsonLinesSink(Envelope("bench"), stream))
    timer = threading.Timer(seconds, daemon.stop_requested.set)
    cpu_start, wall_start = process_cpu_seconds(), time.monotonic()
    timer.start()
    PROFILE.start()
    try:
        with ThreadCpuSampler() as threads:
            status = daemon.run()
    finally:
        PROFILE.stop()
        timer.cancel()
    wall, cpu = time.monotonic() - wall_start, process_cpu_seconds() - cpu_start
    payloads = [json.loads(line) for line in stream.getvalue().splitlines()]
    stats = [p for p in payloads if p["schema"].startswith("emotion-edge/stats/")][-1]
    tracking = daemon.pipeline.tracking
    return {
        "exit_status": status,
        "source": config.source.video,
        "realtime": config.source.realtime,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "cpu_percent_of_one_core": round(100 * cpu / wall, 1),
        "cpu_s_by_thread": threads.by_thread(),
        "profile": profile_rows(PROFILE.rows(wall), threads.by_thread(), wall),
        "cores": os.cpu_count(),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "frames_captured": stats["frames_captured"],
        "frames_dropped": stats["frames_dropped"],
        "audio_blocks": stats["audio_blocks"],
        "events": sum(p["schema"].startswith("emotion-edge/events/") for p in payloads),
        "end_to_end_ms": percentiles_ms(PROFILE.observed_ms(END_TO_END)),
        "latency_samples_ms": PROFILE.observed_ms(END_TO_END),
        "inference_ms": stats["inference_ms"],
        "detect_ms": None if tracking is None else tracking.detect_ms.take(),
        "machine": f"{platform.machine()} {platform.processor() or platform.platform()}",
        "onnxruntime": onnxruntime.__version__,
        "providers": list(config.models.providers),
    }


def run_variants(configs: dict[str, Config], seconds: float, rounds: int) -> dict[str, list[dict[str, Any]]]:
    """``run_benchmark`` of every variant ``rounds`` times, the variants alternating within each round."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in configs}
    for _ in range(rounds):
        for name, config in configs.items():
            runs[name].append(run_benchmark(config, seconds))
    return runs


def _median(results: list[dict[str, Any]], get: Callable[[dict[str, Any]], float | None]) -> float | None:
    present = [value for value in map(get, results) if value is not None]
    return statistics.median(present) if present else None


def variant_rows(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per variant, the median over its rounds of CPU, latency, model times and drops."""
    rows = []
    for name, results in runs.items():
        median = functools.partial(_median, results)
        rows.append({
            "variant": name, "rounds": len(results),
            "cpu_percent_of_one_core": median(lambda r: r["cpu_percent_of_one_core"]),
            "latency_p50_ms": median(lambda r: r["end_to_end_ms"]["p50_ms"]),
            "latency_p95_ms": median(lambda r: r["end_to_end_ms"]["p95_ms"]),
            "latency_p99_ms": median(lambda r: r["end_to_end_ms"]["p99_ms"]),
            "detect_p50_ms": median(lambda r: r["detect_ms"]["p50"] if r["detect_ms"] else None),
            "face_cnn_p50_ms": median(lambda r: r["inference_ms"]["face"]["p50"]),
            "speech_cnn_p50_ms": median(lambda r: r["inference_ms"]["speech"]["p50"]),
            "frames_dropped": median(lambda r: r["frames_dropped"]),
            "peak_rss_mib": median(lambda r: r["peak_rss_mib"]),
        })
    return rows


def format_table(result: dict[str, Any]) -> str:
    """The measurements as an aligned two-column text table."""

    def ms(percentiles: dict[str, float | None] | None) -> str:
        if not percentiles or percentiles["p50"] is None:
            return "-"
        return f"p50 {percentiles['p50']:.1f} ms, p99 {percentiles['p99']:.1f} ms"

    rows = [
        ("source", f"{result['source']} ({'real time' if result['realtime'] else 'as fast as possible'})"),
        ("wall time", f"{result['wall_s']:.2f} s"),
        ("CPU time", f"{result['cpu_s']:.2f} s = {result['cpu_percent_of_one_core']:.0f}% of one core "
                     f"({result['cores']} cores)"),
        ("peak RSS", f"{result['peak_rss_mib']:.0f} MiB"),
        ("frames", f"{result['frames_captured']} captured, {result['frames_dropped']} dropped"),
        ("audio blocks", str(result["audio_blocks"])),
        ("events", str(result["events"])),
        ("capture -> publish", "p50 {p50_ms} ms, p95 {p95_ms} ms, p99 {p99_ms} ms, max {max_ms} ms".format(
            **result["end_to_end_ms"])),
        ("face detection (YuNet)", ms(result["detect_ms"])),
        ("face CNN per batch", ms(result["inference_ms"]["face"])),
        ("speech CNN per batch", ms(result["inference_ms"]["speech"])),
        ("machine", f"{result['machine']}, onnxruntime {result['onnxruntime']} {','.join(result['providers'])}"),
    ]
    width = max(len(name) for name, _ in rows)
    summary = "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
    total = sum(row["cpu_s"] for row in result["profile"])
    return (f"{summary}\n\nwhere the CPU goes, per thread and step (wall ms per call; CPU as % of one core; "
            f"the rows add up to {100 * total / result['wall_s']:.1f}%):\n"
            + format_rows(result["profile"], PROFILE_COLUMNS, digits=2))


PROFILE_COLUMNS = ("thread", "step", "calls", "per_s", "p50_ms", "p95_ms", "p99_ms", "max_ms",
                   "cpu_percent_of_one_core")
