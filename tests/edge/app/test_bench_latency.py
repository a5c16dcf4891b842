"""The latency benchmark's CPU accounting: per-thread rows that add up to the process, on a real daemon run."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from edge.app.bench_latency import NATIVE_THREADS, REMAINDER, ThreadCpuSampler, format_table, run_benchmark
from edge.app.bench_profile import REST, WHOLE, profile_rows
from edge.config.loader import ConfigError
from edge.config.schema import Config
from edge.demo import DEMO_CLIP
from edge.errors import InputError
from edge.steps import StepProfile


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
    profile = result["profile"]
    steps = {(row["thread"], row["step"]): row for row in profile}
    for thread, step in [("stage-faces", "convert to BGR"), ("stage-faces", "detect (YuNet, OpenCV)"),
                         ("stage-faces", "resize for detection"), ("stage-faces", "track"), ("stage-faces", "align"),
                         ("stage-faces", "key faces"), ("stage-face-cnn", "face CNN"), ("stage-speech", "VAD"),
                         ("stage-speech", "MFCC"), ("stage-speech", "speech CNN"),
                         ("stage-fusion", "fusion + smoothing"), ("stage-fusion", "publish"),
                         ("stage-faces", REST)]:
        assert (thread, step) in steps, (thread, step)
    capture = {row["step"] for row in profile if row["thread"].startswith("capture-file:")}
    assert {"decode", "resample audio", REST} <= capture
    timed = [row for row in profile if "calls" in row]
    assert all(row["calls"] > 0 and row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"] <= row["max_ms"] for row in timed)
    # the CPU column adds up to the process (the steps, each thread's rest, the pools and ended threads)
    assert abs(sum(row["cpu_s"] for row in profile) - result["cpu_s"]) <= 0.05 * result["cpu_s"] + 0.05
    # frames between two detections are never converted to BGR: one conversion per detection
    detections = steps[("stage-faces", "detect (YuNet, OpenCV)")]["calls"]
    assert steps[("stage-faces", "convert to BGR")]["calls"] == detections < result["frames_captured"] / 3
    assert "convert to BGR" in format_table(result) and "stage-faces" in format_table(result)
    assert result["end_to_end_ms"]["p50_ms"] is not None and len(result["latency_samples_ms"]) > 0


def test_profile_rows_put_each_threads_rest_under_its_steps_and_add_up() -> None:
    steps = [{"step": "decode", "thread": "capture", "calls": 3, "cpu_s": 0.3},
             {"step": "detect", "thread": "faces", "calls": 2, "cpu_s": 0.5},
             {"step": "align", "thread": "gone", "calls": 1, "cpu_s": 0.1}]   # ended before any sample
    threads = {"faces": 0.8, "capture": 0.4, NATIVE_THREADS: 0.2, REMAINDER: 0.1}
    rows = profile_rows(steps, threads, wall_s=2.0)
    assert [(row["thread"], row["step"]) for row in rows] == [
        ("faces", "detect"), ("faces", REST), ("capture", "decode"), ("capture", REST), (NATIVE_THREADS, WHOLE),
        (REMAINDER, WHOLE), ("gone", "align"), ("gone", REST)]
    assert rows[1]["cpu_s"] == 0.3 and rows[1]["cpu_percent_of_one_core"] == 15.0
    assert abs(sum(row["cpu_s"] for row in rows) - sum(threads.values())) < 1e-9


def test_steps_are_recorded_only_while_a_profile_runs_under_the_threads_name() -> None:
    profile = StepProfile()
    with profile.step("idle"):
        pass
    profile.observe("latency", 0.01)
    assert profile.rows(1.0) == [] and profile.observed_ms("latency") == []
    profile.start()

    def work() -> None:
        for _ in range(3):
            with profile.step("spin"):
                _spin(0.01)

    worker = threading.Thread(target=work, name="worker")
    worker.start()
    worker.join()
    profile.observe("latency", 0.02)
    profile.stop()
    with profile.step("after"):
        pass
    (row,) = profile.rows(0.5)
    assert (row["thread"], row["step"], row["calls"]) == ("worker", "spin", 3)
    # cpu_s is rounded to the millisecond and the percentage is taken before that rounding: 0.1 % apart at most
    assert 0.025 <= row["cpu_s"] <= 0.1 and abs(row["cpu_percent_of_one_core"] - 100 * row["cpu_s"] / 0.5) <= 0.11
    assert row["p50_ms"] >= 9.0 and row["max_ms"] >= row["p99_ms"]
    assert profile.observed_ms("latency") == [20.0]
    profile.start()
    assert profile.rows(1.0) == [] and profile.observed_ms("latency") == []


def test_the_bench_draws_a_png_of_its_variants(tmp_path: Path) -> None:
    from edge.app.cli import main

    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    assert main(["bench", "--seconds", "1.5", "--rounds", "1", "--variant", "every2:pipeline.detect_every=2",
                 "--out", str(out), "--png", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_faces_variants_replay_the_take_tiled_with_its_sound(tmp_path: Path) -> None:
    import av

    from edge.app.bench_clip import grid_of, tiled_clip
    from edge.app.cli import bench_variants
    from edge.features.video import iter_video_frames
    from edge.models.loading import create_detector

    assert [grid_of(n) for n in (1, 2, 3, 4, 5, 9)] == [(1, 1), (2, 1), (2, 2), (2, 2), (3, 2), (3, 3)]
    with pytest.raises(InputError, match="--faces"):
        grid_of(0)
    base = replace(Config(), source=replace(Config().source, video=f"file://{DEMO_CLIP}"))
    configs = bench_variants(base, [], [4], clips=tmp_path)
    assert list(configs) == ["base", "faces4"]
    clip = tmp_path / f"{DEMO_CLIP.stem}-4faces.mp4"
    assert configs["faces4"].source.video == f"file://{clip}"
    frame = next(iter(iter_video_frames(clip, 1)))
    assert frame.image.shape == (720, 1280, 3) and len(create_detector().detect(frame.image)) == 4
    def packets(path: Path, kind: str) -> list[bytes]:
        with av.open(str(path)) as container:
            stream = next(s for s in container.streams if s.type == kind)
            return [bytes(packet) for packet in container.demux(stream) if packet.size]

    assert packets(clip, "audio") == packets(DEMO_CLIP, "audio") != []   # the sound copied as it is
    assert len(packets(clip, "video")) == len(packets(DEMO_CLIP, "video"))
    stamp = clip.stat().st_mtime_ns
    assert tiled_clip(DEMO_CLIP, 4, tmp_path) == clip and clip.stat().st_mtime_ns == stamp   # made once
    with pytest.raises(InputError, match="must be a file"):
        bench_variants(replace(base, source=replace(base.source, video="v4l2:///dev/video0")), [], [4])


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
