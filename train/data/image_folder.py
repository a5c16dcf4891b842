"""Face image sets stored as one folder per class (FER2013's ``train/`` and ``test/``, or any other).

``index_image_folder`` maps each class folder onto a label of a fixed label list through
``edge.taxonomy.canonical_label`` (``fear`` -> ``fearful``), so label ids are the same for every
split and match the product taxonomy. ``load_images`` decodes the indexed files into one gray uint8
array, skipping and counting unreadable images.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from tqdm import tqdm

from edge.errors import InputError
from edge.taxonomy import EMOTIONS, canonical_label

log = logging.getLogger(__name__)

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".tif", ".tiff", ".webp"})


@dataclass
class ImageFolderIndex:
    """Image files of a class-folder set with their label ids, and the entries skipped (with why)."""

    root: Path
    labels: tuple[str, ...]
    paths: list[Path] = field(default_factory=list)
    label_ids: list[int] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Number of images per label, in label order (labels without images count 0)."""
        totals = dict.fromkeys(self.labels, 0)
        for label_id in self.label_ids:
            totals[self.labels[label_id]] += 1
        return totals


class LoadedImages(NamedTuple):
    """Decoded images (N x size x size uint8 gray), their label ids (N,), and the files that failed."""

    images: np.ndarray
    label_ids: np.ndarray
    failures: list[tuple[Path, str]]


def index_image_folder(root: str | Path, labels: Sequence[str] = EMOTIONS) -> ImageFolderIndex:
    """Index ``root/<class>/**/<image>``; label ids are positions in ``labels``.

    Class folder names go through ``canonical_label``; a folder whose emotion is unknown or not in
    ``labels`` raises ``InputError`` naming it. Files that are not images (by suffix), files
    directly in ``root`` and hidden entries of ``root`` are skipped and listed in ``skipped``.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder (expected one sub-folder per class)")
    label_ids = {label: i for i, label in enumerate(labels)}
    index = ImageFolderIndex(root=root, labels=tuple(labels))
    class_dirs = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            index.skipped.append((entry, "hidden entry"))
        elif entry.is_dir():
            class_dirs.append(entry)
        else:
            index.skipped.append((entry, "file outside any class folder"))
    if not class_dirs:
        raise InputError(f"{root}: no class folders (expected e.g. {root}/happy/*.jpg)")
    for class_dir in class_dirs:
        try:
            label = canonical_label(class_dir.name)
        except ValueError as err:
            raise InputError(f"{class_dir}: class folder is not an emotion ({err})") from None
        if label not in label_ids:
            raise InputError(f"{class_dir}: class {label!r} is not one of the labels {list(labels)}")
        for path in sorted(class_dir.rglob("*")):
            if path.is_dir():
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                index.skipped.append((path, f"not an image file (suffix {path.suffix!r})"))
            else:
                index.paths.append(path)
                index.label_ids.append(label_ids[label])
    return index


def load_images(index: ImageFolderIndex, size: int = 48, progress: bool = True) -> LoadedImages:
    """Decode every indexed image as gray, resized to ``size`` x ``size`` when it is not already.

    An image OpenCV cannot decode is skipped with a warning and listed in ``failures``.
    """
    images = np.empty((len(index.paths), size, size), dtype=np.uint8)
    kept: list[int] = []
    failures: list[tuple[Path, str]] = []
    for path, label_id in tqdm(zip(index.paths, index.label_ids, strict=True), total=len(index.paths),
                               desc=f"images {index.root.name}", unit="img", disable=not progress):
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            log.warning("skipping %s: OpenCV cannot decode it as an image", path)
            failures.append((path, "OpenCV cannot decode it as an image"))
            continue
        if image.shape != (size, size):
            shrink = image.shape[0] > size or image.shape[1] > size
            interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            image = cv2.resize(image, (size, size), interpolation=interpolation)
        images[len(kept)] = image
        kept.append(label_id)
    return LoadedImages(images=images[: len(kept)], label_ids=np.asarray(kept, dtype=np.int64),
                        failures=failures)
