"""Benchmark reports: a plain-text table on stdout, a JSON file and confusion-matrix PNGs.

Generic over models: rows are dicts, columns name the keys to print, and a confusion matrix is
drawn with its class labels (rows: truth, columns: prediction; each row normalised to recall).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from edge.app.text_table import format_table  # noqa: E402
from train import distributed  # noqa: E402


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], title: str | None = None,
                digits: int = 3) -> None:
    """Print ``format_table`` of the rows, under ``title`` when given."""
    if title:
        print(title)
    print(format_table(rows, columns, digits))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def save_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` (NumPy arrays and scalars, paths allowed) as indented JSON; create the folder. Under
    torchrun only rank 0 writes."""
    path = Path(path)
    if not distributed.is_main():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    return path


def save_confusion_png(confusion: np.ndarray, labels: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Draw a confusion matrix: colour is the row-normalised rate, each cell shows its count (rank 0 only)."""
    if not distributed.is_main():
        return Path(path)
    confusion = np.asarray(confusion)
    if confusion.shape != (len(labels), len(labels)):
        raise ValueError(f"confusion of shape {confusion.shape} does not match {len(labels)} labels")
    rates = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    size = 1.0 + 0.6 * len(labels)
    figure, axes = plt.subplots(figsize=(size + 1.5, size))
    image = axes.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    ticks = np.arange(len(labels))
    axes.set_xticks(ticks, labels, rotation=45, ha="right")
    axes.set_yticks(ticks, labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for (i, j), count in np.ndenumerate(confusion):
        axes.text(j, i, str(count), ha="center", va="center", fontsize=8,
                  color="white" if rates[i, j] > 0.5 else "black")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="fraction of the true class")
    if title:
        axes.set_title(title)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
