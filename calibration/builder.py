"""Representative calibration sets: a seeded, class-balanced sample of real model inputs, on disk.

A calibration set is what INT8 quantization measures activation ranges on: model inputs exactly
as the device feeds them (raw MFCC windows, 0..255 gray face crops), drawn from the training data
with the same number of samples from every class (``stratified_indices``; a class with fewer
samples gives all it has), seeded so that the same data and seed give the same set. It is saved as
``inputs.npy`` and ``labels.npy`` with ``manifest.json`` (source, seed, per-class counts, the id of
every sample, the SHA-256 of both arrays); ``load_calibration_set`` refuses a set whose arrays do
not match their manifest. The ONNX Runtime reader and the TensorRT calibrator both read this one
format, so both quantization paths see the same samples.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import InputError

MANIFEST = "manifest.json"
INPUTS = "inputs.npy"
LABELS = "labels.npy"
SET_FORMAT = 1
DEFAULT_PER_CLASS = 50


def stratified_indices(labels: Sequence[int] | np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices of ``per_class`` samples of every class present in ``labels`` (seeded, no repeats).

    A class with fewer than ``per_class`` samples contributes all of them.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    picks = [
        rng.choice(members, size=min(per_class, len(members)), replace=False)
        for members in (np.flatnonzero(labels == label) for label in np.unique(labels))
    ]
    return np.sort(np.concatenate(picks)) if picks else np.empty(0, dtype=np.int64)


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and bytes."""
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class CalibrationSet:
    """Model inputs (N, ...) float32 with their class ids, sample ids and provenance."""

    kind: str
    inputs: np.ndarray
    labels: np.ndarray
    sample_ids: tuple[str, ...]
    label_names: tuple[str, ...]
    seed: int
    per_class: int
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not len(self.inputs) == len(self.labels) == len(self.sample_ids):
            raise ValueError(
                f"calibration set: {len(self.inputs)} inputs, {len(self.labels)} labels and "
                f"{len(self.sample_ids)} sample ids differ in number"
            )
        if len(self.inputs) == 0:
            raise InputError("calibration set: no samples")

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.label_names))
        return {name: int(n) for name, n in zip(self.label_names, counts, strict=True)}

    def manifest(self) -> dict[str, Any]:
        return {
            "format": SET_FORMAT,
            "kind": self.kind,
            "count": len(self.inputs),
            "input_shape": list(self.inputs.shape[1:]),
            "input_dtype": str(self.inputs.dtype),
            "label_names": list(self.label_names),
            "seed": self.seed,
            "per_class": self.per_class,
            "class_counts": self.class_counts(),
            "source": self.source,
            "inputs_sha256": array_sha256(self.inputs),
            "labels_sha256": array_sha256(self.labels),
            "sample_ids": list(self.sample_ids),
        }

    def sha256(self) -> str:
        """One checksum for the whole set (inputs and labels)."""
        return hashlib.sha256((array_sha256(self.inputs) + array_sha256(self.labels)).encode()).hexdigest()

    def save(self, directory: str | Path) -> Path:
        """Write the arrays and ``manifest.json`` into ``directory``; return the manifest's path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / INPUTS, self.inputs)
        np.save(directory / LABELS, self.labels)
        path = directory / MANIFEST
        path.write_text(json.dumps(self.manifest(), indent=2) + "\n")
        return path


def load_calibration_set(directory: str | Path) -> CalibrationSet:
    """Read a set written by ``CalibrationSet.save``, checking the arrays against the manifest."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise InputError(f"{directory}: not a calibration set (no {MANIFEST}); "
                         "build one with `emotion-export calibrate`")
    try:
        manifest = json.loads(path.read_text())
        inputs = np.load(directory / INPUTS, allow_pickle=False)
        labels = np.load(directory / LABELS, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{directory}: unreadable calibration set ({exc})") from exc
    if manifest.get("format") != SET_FORMAT:
        raise InputError(f"{path}: calibration set format {manifest.get('format')} is not {SET_FORMAT}")
    for name, array in ((INPUTS, inputs), (LABELS, labels)):
        key = f"{name.split('.')[0]}_sha256"
        if array_sha256(array) != manifest.get(key):
            raise InputError(f"{directory / name}: does not match the checksum in {MANIFEST} (the set was changed)")
    return CalibrationSet(
        kind=manifest["kind"],
        inputs=inputs,
        labels=labels,
        sample_ids=tuple(manifest["sample_ids"]),
        label_names=tuple(manifest["label_names"]),
        seed=int(manifest["seed"]),
        per_class=int(manifest["per_class"]),
        source=manifest.get("source", {}),
    )
