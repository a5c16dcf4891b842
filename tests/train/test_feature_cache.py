"""Feature cache: resumable parallel builds, parameter-keyed folders, recorded failures, readers."""

from __future__ import annotations

import json
import shutil
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge.config.schema import DetectorConfig
from edge.detectors.face import Face
from edge.errors import InputError
from edge.features.alignment import AlignParams
from edge.features.audio import load_audio
from edge.features.keyfaces import key_face_indices
from edge.features.mfcc import MfccParams, mfcc_windows
from edge.features.vad import VadParams, speech_segments, trim_silence
from edge.features.video import open_clip
from train.cli.train import main
from train.data.feature_cache import (
    AvCacheSpec,
    SpeechCacheSpec,
    build_cache,
    cache_dir,
    largest_face,
    load_av_cache,
    load_speech_cache,
)
from train.data.ravdess import index_ravdess


def _speech_root(root: Path, flac: Path) -> Path:
    """A RAVDESS layout of real takes (copies of the fixture), a corrupt file and a silent one."""
    for name in ("Actor_01/03-01-05-02-01-01-01.flac", "Actor_01/03-01-05-02-01-02-01.flac",
                 "Actor_02/03-01-05-02-02-01-02.flac"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(flac, root / name)
    (root / "Actor_01/03-01-03-01-01-01-01.flac").write_bytes(b"fLaC but not really" * 50)
    with wave.open(str(root / "Actor_02/03-01-01-01-01-01-02.wav"), "wb") as silent:
        silent.setnchannels(1)
        silent.setsampwidth(2)
        silent.setframerate(16000)
        silent.writeframes(bytes(2 * 16000 * 2))
    return root


def test_speech_cache_resumes_records_failures_and_matches_the_features(
        tmp_path: Path, speech_flac: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _speech_root(tmp_path / "ravdess", speech_flac)
    out = tmp_path / "cache"
    # An "interrupted" build: only the first three takes (corrupt, fixture, copy), in this process.
    assert main(["cache", "speech", "--data", str(data), "--out", str(out), "--limit", "3",
                 "--workers", "1"]) == 0
    directory = cache_dir(out, data, SpeechCacheSpec())
    first = {p.name: p.stat().st_mtime_ns for p in (directory / "items").glob("*.npz")}
    assert sorted(first) == ["03-01-05-02-01-01-01.npz", "03-01-05-02-01-02-01.npz"]
    assert json.loads((directory / "manifest.json").read_text())["items"] == 2

    # The full build, in worker processes, keeps the items already there and adds the rest.
    assert main(["cache", "speech", "--data", str(data), "--out", str(out), "--workers", "2"]) == 0
    printed = capsys.readouterr().out
    assert "3 items (1 built now, 2 already there), 2 failed" in printed
    again = {p.name: p.stat().st_mtime_ns for p in (directory / "items").glob("*.npz")}
    assert len(again) == 3 and {name: again[name] for name in first} == first
    assert not list((directory / "items").glob("*.tmp"))
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["complete"] and manifest["items"] == 3 and manifest["reused"] == 2
    assert manifest["params"]["mfcc"] == MfccParams().to_dict()
    assert manifest["params"]["vad"] == VadParams().to_dict()
    assert manifest["build_seconds"] > 0
    failures = {Path(f["path"]).name: f["error"] for f in manifest["failures"]}
    assert set(failures) == {"03-01-03-01-01-01-01.flac", "03-01-01-01-01-01-02.wav"}
    assert "no speech" in failures["03-01-01-01-01-01-02.wav"]
    assert "03-01-03-01-01-01-01.flac" in failures["03-01-03-01-01-01-01.flac"]

    cache = load_speech_cache(directory)
    expected = mfcc_windows(trim_silence(load_audio(speech_flac), 16000, VadParams()), MfccParams())
    assert cache.take_ids == ["03-01-05-02-01-01-01", "03-01-05-02-01-02-01", "03-01-05-02-02-01-02"]
    assert cache.actors.tolist() == [1, 1, 2] and cache.label_ids.tolist() == [4, 4, 4]
    assert cache.windows.dtype == np.float32 and cache.windows.shape[1:] == expected.shape[1:]
    np.testing.assert_array_equal(cache.windows[cache.window_take == 0], expected)
    assert cache.window_labels.tolist() == [4] * len(cache.windows)
    assert cache.window_actors.tolist() == [1] * (2 * len(expected)) + [2] * len(expected)


def test_speech_cache_window_options_cut_longer_windows(
        tmp_path: Path, speech_flac: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "ravdess"
    (data / "Actor_01").mkdir(parents=True)
    shutil.copy(speech_flac, data / "Actor_01" / speech_flac.name)
    out = tmp_path / "cache"
    assert main(["cache", "speech", "--data", str(data), "--out", str(out), "--workers", "1",
                 "--window-s", "2", "--hop-s", "1"]) == 0
    params = replace(MfccParams(), window_s=2.0, hop_s=1.0)
    cache = load_speech_cache(cache_dir(out, data, SpeechCacheSpec(mfcc=params)))
    expected = mfcc_windows(trim_silence(load_audio(speech_flac), 16000, VadParams()), params)
    assert cache.windows.shape[2] == expected.shape[2] == 199
    np.testing.assert_array_equal(cache.windows, expected)
    assert main(["cache", "speech", "--data", str(data), "--out", str(out), "--window-s", "0.01"]) == 2
    assert "window_s" in caplog.text


def test_every_parameter_names_its_own_cache(tmp_path: Path) -> None:
    data = tmp_path / "ravdess_speech_16k"
    default = cache_dir(tmp_path, data, SpeechCacheSpec())
    assert default.parent == tmp_path and default.name.startswith("speech-ravdess_speech_16k-")
    assert cache_dir(tmp_path, data, SpeechCacheSpec()) == default
    variants = [SpeechCacheSpec(mfcc=MfccParams(numcep=13)), SpeechCacheSpec(mfcc=MfccParams(hop_s=0.25)),
                SpeechCacheSpec(vad=VadParams(aggressiveness=3))]
    names = {cache_dir(tmp_path, data, spec).name for spec in variants} | {default.name}
    assert len(names) == 4
    av = AvCacheSpec()
    av_variants = [replace(av, every_nth=2), replace(av, key_face_radius=3),
                   replace(av, align=AlignParams(crop_size=64)),
                   replace(av, detector=DetectorConfig(score_threshold=0.8)),
                   replace(av, mfcc=MfccParams(numcep=13))]
    av_names = {cache_dir(tmp_path, data, spec).name for spec in [av, *av_variants]}
    assert len(av_names) == 6 and all(name.startswith("av-") for name in av_names)


def test_av_cache_of_the_fixture_clip(tmp_path: Path, av_clip: Path) -> None:
    data = tmp_path / "av"
    (data / "Actor_05").mkdir(parents=True)
    shutil.copy(av_clip, data / "Actor_05" / av_clip.name)
    spec = AvCacheSpec(every_nth=5, key_face_radius=2)
    report = build_cache(index_ravdess(data).takes, spec, tmp_path / "cache", data, workers=1, progress=False)
    assert (report.built, report.reused, report.failures) == (1, 0, [])

    cache = load_av_cache(report.directory)
    (clip,) = cache.clips
    assert (clip.take_id, clip.actor, clip.label_id) == ("01-01-03-01-01-02-05", 5, 2)
    assert clip.frames == 20                                   # 97 frames, every 5th
    assert clip.crops.dtype == np.uint8
    assert clip.crops.shape == (clip.frames - clip.frames_without_face, 48, 48)
    assert len(clip.crops) >= 18                               # one face, facing the camera throughout
    assert clip.key_faces.tolist() == key_face_indices(clip.crops, 2)
    assert 3 <= len(clip.key_faces) <= len(clip.crops) // 2 + 1
    np.testing.assert_allclose(np.diff(clip.pts), 5 / 29.97, atol=1e-3)   # no frame dropped here

    media = open_clip(av_clip)
    voiced = trim_silence(media.audio, 16000, VadParams())
    np.testing.assert_array_equal(clip.windows, mfcc_windows(voiced, MfccParams()))
    speech_start = media.audio_start + speech_segments(media.audio, 16000, VadParams())[0][0]
    assert clip.window_starts[0] == pytest.approx(speech_start) and speech_start > 0.3
    np.testing.assert_allclose(np.diff(clip.window_starts), 0.5)
    assert cache.manifest["params"]["key_face_radius"] == 2


def test_the_largest_face_is_the_subject() -> None:
    landmarks = np.zeros((5, 2), dtype=np.float32)
    faces = [Face(box=np.array([0, 0, 40, 50], dtype=np.float32), score=0.95, landmarks=landmarks),
             Face(box=np.array([300, 100, 60, 70], dtype=np.float32), score=0.80, landmarks=landmarks),
             Face(box=np.array([10, 10, 20, 20], dtype=np.float32), score=0.90, landmarks=landmarks)]
    assert largest_face(faces) is faces[1]


def test_readers_refuse_what_is_not_their_cache(tmp_path: Path, speech_flac: Path) -> None:
    with pytest.raises(InputError, match="not a feature cache"):
        load_speech_cache(tmp_path)
    data = tmp_path / "data"
    (data / "Actor_01").mkdir(parents=True)
    shutil.copy(speech_flac, data / "Actor_01" / speech_flac.name)
    report = build_cache(index_ravdess(data).takes, SpeechCacheSpec(), tmp_path / "c", data, workers=1,
                         progress=False)
    with pytest.raises(InputError, match="'speech' cache"):
        load_av_cache(report.directory)
