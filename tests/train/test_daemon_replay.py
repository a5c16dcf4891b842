"""The daemon replay benchmark: scoring a label timeline, and the real daemon on the bundled RAVDESS clip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.config.schema import Config
from train.cli.bench import main as bench_main
from train.data.ravdess import parse_take_name
from train.fusion.replay import replay_clip, score_clip, summary


def test_a_timeline_is_scored_by_first_correct_time_share_and_final_label() -> None:
    timeline = [(0.5, "neutral"), (1.5, "happy"), (2.5, "neutral"), (3.0, "happy")]
    scored = score_clip(timeline, "happy", duration_s=4.0)
    assert scored["time_to_correct_s"] == 1.5 and scored["first_label_s"] == 0.5
    assert scored["correct_share"] == pytest.approx((1.0 + 1.0) / 3.5)
    assert scored["final_label"] == "happy" and scored["ends_correct"] and scored["label_changes"] == 3
    never = score_clip([(0.5, "sad")], "happy", duration_s=4.0)
    assert never["time_to_correct_s"] is None and never["correct_share"] == 0.0 and not never["ends_correct"]
    silent = score_clip([], "happy", duration_s=4.0)
    assert silent["final_label"] is None and not silent["ends_correct"]
    total = summary([{**scored, "time_to_correct_s": 1.5}, {**never}, {**scored, "time_to_correct_s": 0.5}])
    assert total["ends_correct"] == pytest.approx(2 / 3) and total["reached_correct"] == pytest.approx(2 / 3)
    assert total["median_time_to_correct_s"] == 1.0


def test_the_daemon_replays_the_bundled_clip_in_media_time(av_clip: Path) -> None:
    result = replay_clip(Config(), parse_take_name(av_clip))
    assert result["truth"] == "happy"
    times = [t for t, _ in result["timeline"]]
    assert times and 0.0 <= times[0] <= times[-1] <= 4.0        # media seconds of a clip of about 3.7 s
    assert result["final_label"] == "happy"                      # the shipped models get this one right


def test_the_command_writes_the_table_and_json(av_clip: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "ravdess" / "Actor_05"
    data.mkdir(parents=True)
    (data / av_clip.name).symlink_to(av_clip)
    assert bench_main(["daemon-replay", "--data", str(data.parent), "--set", "smoothing.hold=3",
                       "--out", str(tmp_path / "out")]) == 0
    assert "end on their label" in capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "replay.json").read_text())
    assert report["summary"]["clips"] == 1 and report["clips"][0]["take_id"] == av_clip.stem
    assert bench_main(["daemon-replay", "--data", str(tmp_path / "out"), "--out", str(tmp_path / "x")]) != 0
