"""The one place that defines emotion label sets and the mappings between them.

RAVDESS has 8 classes, FER2013 has 7 (no ``calm``). The fused output of the product uses the
7-class ``EMOTIONS`` taxonomy, where RAVDESS ``calm`` maps to ``neutral``. Every model file carries
its own label list; these tuples are the canonical orders.
"""

from __future__ import annotations

from collections.abc import Sequence

# RAVDESS emotion codes 01..08, in code order.
RAVDESS_LABELS: tuple[str, ...] = (
    "neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised",
)
# FER2013 folder names, in the alphabetical order of the usual image-folder release.
FER2013_FOLDERS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
# The product's 7-class taxonomy (RAVDESS order without calm).
EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")
# What the daemon reports instead of an emotion while the evidence is too weak (smoothing.min_confidence).
UNCERTAIN = "uncertain"

# Synonyms found in datasets, mapped onto the names used in EMOTIONS / RAVDESS_LABELS.
_SYNONYMS: dict[str, str] = {
    "fear": "fearful",
    "surprise": "surprised",
    "anger": "angry",
    "happiness": "happy",
    "sadness": "sad",
    "disgusted": "disgust",
}


def canonical_label(name: str) -> str:
    """Return the canonical spelling of an emotion name (``fear`` -> ``fearful``); calm stays calm."""
    key = name.strip().lower()
    key = _SYNONYMS.get(key, key)
    if key not in RAVDESS_LABELS:
        raise ValueError(f"unknown emotion label {name!r}; known: {', '.join(RAVDESS_LABELS)}")
    return key


def to_emotion7(name: str) -> str:
    """Map any known label onto the 7-class product taxonomy (``calm`` -> ``neutral``)."""
    label = canonical_label(name)
    return "neutral" if label == "calm" else label


def mapping_matrix(source: Sequence[str], target: Sequence[str]) -> list[list[float]]:
    """A |source| x |target| 0/1 matrix that sums source posteriors into target classes.

    Each source label goes to its 7-class equivalent in ``target`` (e.g. calm and neutral both to
    neutral). Raises ``ValueError`` when a source label has no place in ``target``.
    """
    target_index = {to_emotion7(t): i for i, t in enumerate(target)}
    rows = []
    for label in source:
        mapped = to_emotion7(label)
        if mapped not in target_index:
            raise ValueError(f"label {label!r} has no counterpart in target labels {list(target)}")
        row = [0.0] * len(target)
        row[target_index[mapped]] = 1.0
        rows.append(row)
    return rows
