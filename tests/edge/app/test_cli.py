"""The emotion-edge command line: the README demo on the bundled clip, classify with and without a fusion head,
help, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_models import fusion_set

from edge.app.cli import main
from edge.demo import DEMO_CLIP
from edge.taxonomy import EMOTIONS, RAVDESS_LABELS


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
    assert by_type["clip"][0]["path"] == str(DEMO_CLIP)
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


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Face model favouring happy, speech model favouring sad, a fusion head over both favouring surprised."""
    return fusion_set(tmp_path_factory.mktemp("tiny"))


def _classify(capsys: pytest.CaptureFixture[str], tiny: dict[str, Path], *args: str) -> list[dict]:
    models = ["--speech-model", str(tiny["speech"]), "--face-model", str(tiny["face"]), "--every-nth", "4"]
    assert main(["classify", *args, *models]) == 0
    return _records(capsys)


def test_classify_fuses_a_video_by_the_head_and_reports_each_modality(
    capsys: pytest.CaptureFixture[str], tiny: dict[str, Path], speech_flac: Path
) -> None:
    [video, audio] = _classify(capsys, tiny, str(DEMO_CLIP), str(speech_flac), "--fusion-model", str(tiny["fusion"]))
    assert (video["label"], video["fusion"]) == ("surprised", "model")
    assert list(video["posterior"]) == list(EMOTIONS) and sum(video["posterior"].values()) == pytest.approx(1, abs=1e-3)
    speech, face = video["modalities"]["speech"], video["modalities"]["face"]
    assert (speech["label"], list(speech["posterior"])) == ("sad", list(RAVDESS_LABELS)) and speech["windows"] >= 1
    assert (face["label"], list(face["posterior"])) == ("happy", list(EMOTIONS)) and face["key_faces"] >= 1
    assert (audio["label"], audio["fusion"]) == ("sad", "speech_only")   # one modality: the head is not used
    [decision] = _classify(capsys, tiny, str(DEMO_CLIP))
    assert decision["fusion"] == "decision" and decision["modalities"] == video["modalities"]


def test_classify_fuses_the_shipped_models_at_the_decision_level(capsys: pytest.CaptureFixture[str]) -> None:
    # this release ships no fusion head (the last one was made for the previous face model): decision fusion
    assert main(["classify", str(DEMO_CLIP), "--every-nth", "4"]) == 0
    [fused] = _records(capsys)
    assert (fused["label"], fused["fusion"]) == ("happy", "decision")   # the bundled take is happy
    assert set(fused["modalities"]) == {"face", "speech"}


def test_classify_refuses_a_fusion_head_without_both_models(
    tiny: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    assert main(["classify", str(DEMO_CLIP), "--no-speech", "--fusion-model", str(tiny["fusion"]),
                 "--face-model", str(tiny["face"])]) == 2
    assert "--fusion-model fuses speech and faces" in caplog.text


@pytest.mark.parametrize("argv", [["--help"], ["features", "--help"]])
def test_help_explains_every_option(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    assert "usage: emotion-edge" in capsys.readouterr().out


def test_an_out_of_range_crop_size_is_a_clear_error(caplog: pytest.LogCaptureFixture) -> None:
    assert main(["features", "--crop-size", "100"]) == 2
    assert "crop_size" in caplog.text
