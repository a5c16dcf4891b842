"""The emotion-edge command line: the README demo on the bundled clip, help, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.cli import BUNDLED_CLIP, main


def _records(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_features_on_the_bundled_clip_finds_speech_windows_and_one_face_per_frame(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["features", "--every-nth", "10"]) == 0
    records = _records(capsys)
    by_type: dict[str, list[dict]] = {}
    for record in records:
        by_type.setdefault(record["type"], []).append(record)
    assert by_type["clip"][0]["path"] == str(BUNDLED_CLIP)
    assert by_type["clip"][0]["video"] is True
    segments = by_type["speech_segment"]
    assert segments and all(0 <= s["start_s"] < s["end_s"] <= by_type["clip"][0]["duration_s"] for s in segments)
    windows = by_type["mfcc_windows"][0]
    assert windows["count"] >= 1 and windows["shape"][0] == 3
    assert windows["starts_s"][0] == pytest.approx(segments[0]["start_s"], abs=0.01)
    summary = by_type["faces_summary"][0]
    assert summary["frames_sampled"] == summary["frames_with_face"] == len(by_type["face"])
    assert summary["key_faces_pts_s"], "no key faces were selected"


def test_features_on_an_audio_file_reports_speech_only(speech_flac: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["features", str(speech_flac)]) == 0
    types = [r["type"] for r in _records(capsys)]
    assert types[0] == "clip" and "mfcc_windows" in types and "face" not in types


def test_a_bad_file_is_reported_and_the_others_still_run(
    tmp_path: Path, speech_flac: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00not a video" * 100)
    assert main(["features", str(broken), str(speech_flac)]) == 1
    assert any(r["path"] == str(speech_flac) for r in _records(capsys) if r["type"] == "clip")
    assert str(broken) in caplog.text


@pytest.mark.parametrize("argv", [["--help"], ["features", "--help"]])
def test_help_explains_every_option(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    assert "usage: emotion-edge" in capsys.readouterr().out


def test_an_out_of_range_crop_size_is_a_clear_error(caplog: pytest.LogCaptureFixture) -> None:
    assert main(["features", "--crop-size", "100"]) == 2
    assert "crop_size" in caplog.text
