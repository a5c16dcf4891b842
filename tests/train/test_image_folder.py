"""Class-folder image sets: indexing FER2013, label mapping, skipped files and corrupt images."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import InputError
from edge.taxonomy import EMOTIONS, RAVDESS_LABELS
from train.data.image_folder import index_image_folder, load_images


def test_fer2013_counts(fer2013_dir: Path) -> None:
    train = index_image_folder(fer2013_dir / "train")
    test = index_image_folder(fer2013_dir / "test")
    assert len(train.paths) == 28709 and len(test.paths) == 7178
    assert train.skipped == [] and test.skipped == []
    assert train.labels == EMOTIONS
    counts = train.counts()
    assert counts["happy"] == 7215 and counts["fearful"] == 4097 and counts["surprised"] == 3171
    assert test.counts()["disgust"] == 111


def test_fer2013_images_load_as_48px_gray(fer2013_dir: Path) -> None:
    index = index_image_folder(fer2013_dir / "test")
    index.paths, index.label_ids = index.paths[::500], index.label_ids[::500]
    images, label_ids, failures = load_images(index, progress=False)
    assert images.shape == (len(index.paths), 48, 48) and images.dtype == np.uint8
    assert failures == [] and label_ids.tolist() == index.label_ids
    assert images.std() > 10                                   # real faces, not blank buffers


def _write_image(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def test_synonyms_map_to_canonical_labels_and_extras_are_skipped(tmp_path: Path) -> None:
    face = np.arange(48 * 48, dtype=np.uint8).reshape(48, 48)
    _write_image(tmp_path / "fear" / "a.png", face)
    _write_image(tmp_path / "Happiness" / "b.jpg", face)
    _write_image(tmp_path / "Happiness" / "sub" / "c.png", face)
    (tmp_path / "Happiness" / "notes.txt").write_text("not an image")
    (tmp_path / "README").write_text("outside the classes")
    (tmp_path / ".cache").mkdir()
    index = index_image_folder(tmp_path)
    named = {p.name: index.labels[i] for p, i in zip(index.paths, index.label_ids, strict=True)}
    assert named == {"a.png": "fearful", "b.jpg": "happy", "c.png": "happy"}
    assert sorted(p.name for p, _ in index.skipped) == [".cache", "README", "notes.txt"]


def test_unknown_class_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "happy").mkdir()
    (tmp_path / "contempt").mkdir()
    with pytest.raises(InputError, match="contempt"):
        index_image_folder(tmp_path)
    (tmp_path / "contempt").rmdir()
    (tmp_path / "calm").mkdir()
    with pytest.raises(InputError, match="calm"):
        index_image_folder(tmp_path)                            # not in the 7-class default
    assert index_image_folder(tmp_path, labels=RAVDESS_LABELS).labels == RAVDESS_LABELS


def test_corrupt_image_is_skipped_counted_and_warned(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(0)
    _write_image(tmp_path / "sad" / "big.png", rng.integers(0, 255, (96, 120), dtype=np.uint8))
    _write_image(tmp_path / "angry" / "small.png", rng.integers(0, 255, (20, 20, 3), dtype=np.uint8))
    corrupt = tmp_path / "angry" / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    index = index_image_folder(tmp_path)
    with caplog.at_level(logging.WARNING, logger="train.data.image_folder"):
        images, label_ids, failures = load_images(index, size=64, progress=False)
    assert images.shape == (2, 64, 64)
    assert [EMOTIONS[i] for i in label_ids] == ["angry", "sad"]
    assert [p for p, _ in failures] == [corrupt]
    assert str(corrupt) in caplog.text
