"""Calibration sets drawn from the real training data: speech cache windows and face image folders.

Speech: MFCC windows of a speech feature cache (``emotion-train cache speech``), optionally only
those of given actors (a cross-validation fold calibrates on its training actors); a sample id is
``<take id>/w<window index in the take>``. Faces: images of a class-folder set (FER2013
``train/``); only the picked images are decoded; a sample id is the path under the set's root.
Both draw ``per_class`` samples of every class with ``calibration.builder.stratified_indices``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from calibration.builder import DEFAULT_PER_CLASS, CalibrationSet, stratified_indices
from edge.errors import InputError
from edge.taxonomy import EMOTIONS, RAVDESS_LABELS
from train.data.feature_cache import load_speech_cache
from train.data.image_folder import ImageFolderIndex, index_image_folder, load_images


def speech_calibration(
    cache_dir: str | Path,
    per_class: int = DEFAULT_PER_CLASS,
    seed: int = 0,
    actors: Sequence[int] | None = None,
) -> CalibrationSet:
    """Class-balanced MFCC windows of a speech cache (of ``actors`` only, when given)."""
    cache = load_speech_cache(cache_dir)
    pool = np.isin(cache.window_actors, list(actors)) if actors is not None else np.ones(len(cache.windows), bool)
    if not pool.any():
        raise InputError(f"{cache_dir}: no windows of actors {sorted(actors or [])}")
    candidates = np.flatnonzero(pool)
    picks = candidates[stratified_indices(cache.window_labels[candidates], per_class, seed)]
    first_window = np.searchsorted(cache.window_take, np.arange(len(cache.take_ids)))
    ids = tuple(f"{cache.take_ids[cache.window_take[i]]}/w{i - first_window[cache.window_take[i]]}" for i in picks)
    return CalibrationSet(
        kind="speech",
        inputs=np.ascontiguousarray(cache.windows[picks], dtype=np.float32),
        labels=cache.window_labels[picks].astype(np.int64),
        sample_ids=ids,
        label_names=RAVDESS_LABELS,
        seed=seed,
        per_class=per_class,
        source={
            "data": cache.manifest["data_root"],
            "cache": Path(cache_dir).name,
            "cache_params_hash": cache.manifest["params_hash"],
            "actors": sorted(set(cache.window_actors[picks].tolist())),
        },
    )


def face_calibration(
    image_root: str | Path,
    per_class: int = DEFAULT_PER_CLASS,
    seed: int = 0,
    crop_size: int = 48,
) -> CalibrationSet:
    """Class-balanced gray face crops (N, 1, S, S) float32 0..255 of a class-folder image set."""
    index = index_image_folder(image_root, EMOTIONS)
    if not index.paths:
        raise InputError(f"{image_root}: no images in its class folders")
    picks = stratified_indices(index.label_ids, per_class, seed)
    subset = ImageFolderIndex(
        root=index.root,
        labels=index.labels,
        paths=[index.paths[i] for i in picks],
        label_ids=[index.label_ids[i] for i in picks],
    )
    loaded = load_images(subset, size=crop_size, progress=False)
    if loaded.failures:
        raise InputError(f"{image_root}: cannot decode calibration images {[str(p) for p, _ in loaded.failures]}")
    return CalibrationSet(
        kind="face",
        inputs=np.ascontiguousarray(loaded.images[:, None], dtype=np.float32),
        labels=loaded.label_ids,
        sample_ids=tuple(path.relative_to(index.root).as_posix() for path in subset.paths),
        label_names=EMOTIONS,
        seed=seed,
        per_class=per_class,
        source={"data": str(Path(image_root).resolve()), "crop_size": crop_size},
    )




