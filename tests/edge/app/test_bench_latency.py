"""The latency benchmark's CPU accounting: per-thread rows that add up to the process, on a real daemon run."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from edge.app.bench_latency import REMAINDER, ThreadCpuSampler, format_table, run_benchmark
from edge.config.loader import ConfigError
from edge.config.schema import Config
from edge.demo import DEMO_CLIP
from edge.errors import InputError


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_each_threads_cpu_is_counted_under_its_name_and_the_rows_add_up() -> None:
    done, release = threading.Event(), threading.Event()

    def spin_then_wait() -> None:   # alive until the sampler's last sample, so all of its CPU has its name
        _spin(0.3)
        done.set()
        release.wait()

    with ThreadCpuSampler(period_s=0.05) as sampler:
        busy = threading.Thread(target=spin_then_wait, name="busy")
        busy.start()
        done.wait()
        short = threading.Thread(target=_spin, args=(0.02,), name="short")   # may end between two samples
        short.start()
        short.join()
    release.set()
    busy.join()
    rows = sampler.by_thread()
    assert rows["busy"] >= 0.25, rows
    assert REMAINDER in rows and all(seconds >= 0 for seconds in rows.values()), rows
    # /proc counts each thread in 10 ms clock ticks: the rows may differ from the process by a tick per thread
    assert abs(sum(rows.values()) - sampler.process_seconds) <= 0.01 * len(rows) + 0.02, rows


def test_the_benchmark_reports_cpu_per_stage_thread_on_the_bundled_clip() -> None:
    config = Config()
    config = replace(config, source=replace(config.source, video=f"file://{DEMO_CLIP}", realtime=True))
    result = run_benchmark(config, seconds=2.0)
    assert result["exit_status"] == 0
    threads = result["cpu_s_by_thread"]
    assert {"stage-faces", "stage-face-cnn", "stage-speech", "stage-fusion"} <= set(threads)
    assert any(name.startswith("capture-file:") for name in threads)
    assert abs(sum(threads.values()) - result["cpu_s"]) <= 0.05 * result["cpu_s"] + 0.05
    assert "CPU stage-faces" in format_table(result)


def test_variants_alternate_and_are_summarised_side_by_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from edge.app.cli import bench_variants, main

    base = Config()
    configs = bench_variants(base, ["spin:models.spinning=true", "every6:pipeline.detect_every=6,models.threads=1"])
    assert list(configs) == ["base", "spin", "every6"] and configs["spin"].models.spinning
    assert configs["every6"].pipeline.detect_every == 6 and configs["every6"].models.threads == 1
    for bad in ("models.threads=1", "base:models.threads=1", "x:threads=1"):
        with pytest.raises((InputError, ConfigError)):
            bench_variants(base, [bad])
    out = tmp_path / "variants.json"
    assert main(["bench", "--seconds", "1.5", "--rounds", "1", "--variant", "spin:models.spinning=true",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "cpu_percent_of_one_core" in printed and "spin" in printed
    report = json.loads(out.read_text())
    assert [row["variant"] for row in report["summary"]] == ["base", "spin"]
    assert all(len(runs) == 1 for runs in report["runs"].values())
