"""Calibration sets: class-balanced and seeded, saved with a checked manifest, read the same by ORT and TensorRT."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from calibration.builder import CalibrationSet, load_calibration_set, stratified_indices
from calibration.ort_reader import CalibrationSetReader
from calibration.trt_calibrator import CalibrationBatches
from edge.errors import InputError
from edge.taxonomy import EMOTIONS, RAVDESS_LABELS
from export.calibration_data import face_calibration, speech_calibration
from train.data.feature_cache import SpeechCacheSpec, build_cache
from train.data.image_folder import index_image_folder
from train.data.ravdess import index_ravdess


@pytest.fixture(scope="module")
def fer_train_labels(fer2013_dir: Path) -> np.ndarray:
    return np.asarray(index_image_folder(fer2013_dir / "train").label_ids)


@pytest.fixture(scope="module")
def face_set(fer2013_dir: Path) -> CalibrationSet:
    return face_calibration(fer2013_dir / "test", per_class=6, seed=3)


@pytest.fixture(scope="module")
def speech_cache(ravdess_speech_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real speech cache of actors 1 and 2: every emotion, statement 1, first repetition (16 takes)."""
    takes = [t for t in index_ravdess(ravdess_speech_dir).takes
             if t.actor in (1, 2) and t.statement == 1 and t.repetition == 1 and t.intensity == 1]
    report = build_cache(takes, SpeechCacheSpec(), tmp_path_factory.mktemp("cache"), ravdess_speech_dir,
                         workers=1, progress=False)
    return report.directory


def test_stratified_indices_are_class_balanced_seeded_and_without_repeats(fer_train_labels: np.ndarray) -> None:
    picks = stratified_indices(fer_train_labels, per_class=500, seed=0)
    counts = np.bincount(fer_train_labels[picks], minlength=len(EMOTIONS))
    available = np.bincount(fer_train_labels, minlength=len(EMOTIONS))
    np.testing.assert_array_equal(counts, np.minimum(available, 500))
    assert counts[EMOTIONS.index("disgust")] == available[EMOTIONS.index("disgust")] < 500  # the small class: all
    assert len(np.unique(picks)) == len(picks) and np.all(np.diff(picks) > 0)
    np.testing.assert_array_equal(picks, stratified_indices(fer_train_labels, per_class=500, seed=0))
    assert not np.array_equal(picks, stratified_indices(fer_train_labels, per_class=500, seed=1))
    with pytest.raises(ValueError, match="per_class must be at least 1"):
        stratified_indices(fer_train_labels, per_class=0, seed=0)


def test_face_set_holds_real_crops_of_every_class(face_set: CalibrationSet, fer2013_dir: Path) -> None:
    assert face_set.inputs.shape == (6 * len(EMOTIONS), 1, 48, 48) and face_set.inputs.dtype == np.float32
    assert face_set.class_counts() == dict.fromkeys(EMOTIONS, 6)
    assert face_set.inputs.min() >= 0 and face_set.inputs.max() <= 255 and face_set.inputs.std() > 10
    first = face_set.sample_ids[0]
    assert (fer2013_dir / "test" / first).is_file() and first.split("/")[0] in ("angry", "anger")
    again = face_calibration(fer2013_dir / "test", per_class=6, seed=3)
    assert again.sample_ids == face_set.sample_ids and again.sha256() == face_set.sha256()
    assert face_calibration(fer2013_dir / "test", per_class=6, seed=4).sample_ids != face_set.sample_ids


def test_speech_set_draws_windows_of_the_requested_actors(speech_cache: Path) -> None:
    calibration = speech_calibration(speech_cache, per_class=1, seed=0, actors=[2])
    assert calibration.class_counts() == dict.fromkeys(RAVDESS_LABELS, 1)
    assert calibration.inputs.shape[1:] == (3, 99, 40)
    assert all(sample.split("/")[0].endswith("-02") for sample in calibration.sample_ids)
    assert calibration.source["actors"] == [2]
    both = speech_calibration(speech_cache, per_class=2, seed=0)
    assert both.source["actors"] == [1, 2] and len(both.inputs) == 2 * len(RAVDESS_LABELS)
    assert speech_calibration(speech_cache, per_class=2, seed=0).sample_ids == both.sample_ids
    with pytest.raises(InputError, match=r"no windows of actors \[7\]"):
        speech_calibration(speech_cache, actors=[7])


def test_a_saved_set_round_trips_and_a_changed_one_is_refused(face_set: CalibrationSet, tmp_path: Path) -> None:
    manifest_path = face_set.save(tmp_path / "set")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["count"] == len(face_set.inputs) and manifest["sample_ids"] == list(face_set.sample_ids)
    assert manifest["source"]["data"].endswith("test") and manifest["seed"] == 3
    loaded = load_calibration_set(tmp_path / "set")
    np.testing.assert_array_equal(loaded.inputs, face_set.inputs)
    assert loaded.sample_ids == face_set.sample_ids and loaded.sha256() == face_set.sha256()
    changed = loaded.inputs.copy()
    changed[0, 0, 0, 0] += 1
    np.save(tmp_path / "set" / "inputs.npy", changed)
    with pytest.raises(InputError, match="inputs.npy: does not match the checksum"):
        load_calibration_set(tmp_path / "set")
    with pytest.raises(InputError, match="not a calibration set"):
        load_calibration_set(tmp_path)


def test_the_ort_reader_feeds_every_sample_in_order_and_rewinds(face_set: CalibrationSet) -> None:
    reader = CalibrationSetReader(face_set, "face", batch_size=16)
    batches = list(reader)
    assert [len(b["face"]) for b in batches] == [14, 14, 14] and len(reader) == 3  # equal batches: 42 = 3 x 14
    np.testing.assert_array_equal(np.concatenate([b["face"] for b in batches]), face_set.inputs)
    assert reader.get_next() is None
    reader.rewind()
    first = reader.get_next()
    assert first is not None
    np.testing.assert_array_equal(first["face"], face_set.inputs[:14])


def test_tensorrt_batches_are_full_and_match_the_set(face_set: CalibrationSet) -> None:
    batches = CalibrationBatches(face_set, batch_size=8)
    chunks = list(batches)
    assert len(chunks) == len(batches) == 42 // 8 and all(c.shape == (8, 1, 48, 48) for c in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks), face_set.inputs[:40])
    assert batches.nbytes == 8 * 48 * 48 * 4
    with pytest.raises(InputError, match="calibration batch size 43 must be in 1..42"):
        CalibrationBatches(face_set, batch_size=43)
