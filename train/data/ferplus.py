"""FER+ crowd labels for the FER2013 image folders: vote distributions, majority labels and splits.

``ferplus_votes.csv`` (beside the FER2013 folders) gives the 10 annotators' votes over neutral,
happiness, surprise, sadness, anger, disgust, fear, contempt, unknown and NF (not a face) for
35,712 of the 35,887 FER2013 JPEGs. The rule that turns votes into 7-class targets
(``edge.taxonomy.EMOTIONS``):

1. Votes for contempt, unknown and NF are dropped: the product taxonomy has no such classes.
2. Single votes are dropped as outliers (as FER+'s own reference code does), unless every emotion
   vote of the image is a single one (then all of them are kept).
3. The remaining votes, normalised, are the soft target.
4. An image is left out (of training, validation and test) when its majority over all 10 columns
   (ties to the first column) is contempt, unknown or NF, or when no emotion vote remains; the
   175 images without an FER+ entry (FER+ dropped them) are left out too.

The majority label of a kept image is the arg-max of its 7 emotion votes before rule 2 (ties to
the taxonomy's order), the label FER+ papers score against. Splits follow FER+'s names:
FER2013Train = Training (fit), FER2013Valid = PublicTest (validation, model selection),
FER2013Test = PrivateTest (test, never used to choose).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import InputError
from edge.taxonomy import EMOTIONS, canonical_label
from train.data.image_folder import ImageFolderIndex, index_image_folder, load_images

VOTES_FILE = "ferplus_votes.csv"
VOTE_COLUMNS: tuple[str, ...] = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                                 "contempt", "unknown", "NF")
EMOTION_VOTE_COLUMNS = VOTE_COLUMNS[:7]
SPLITS: dict[str, str] = {"FER2013Train": "train", "FER2013Valid": "validation", "FER2013Test": "test"}
FERPLUS_RULE = ("contempt/unknown/NF votes dropped, single votes dropped, normalised; images whose majority "
                "is contempt/unknown/NF or without FER+ votes left out")
# Vote column -> position in EMOTIONS.
_TO_EMOTIONS = np.array([EMOTIONS.index(canonical_label(name)) for name in EMOTION_VOTE_COLUMNS])


def soft_target(votes: np.ndarray) -> np.ndarray | None:
    """The 7-class target (``EMOTIONS`` order) of one image's 10 vote counts, None when it is left out."""
    votes = np.asarray(votes, dtype=np.float64)
    if votes.shape != (len(VOTE_COLUMNS),):
        raise ValueError(f"need {len(VOTE_COLUMNS)} vote counts, got shape {votes.shape}")
    if int(np.argmax(votes)) >= len(EMOTION_VOTE_COLUMNS):
        return None
    emotion = votes[: len(EMOTION_VOTE_COLUMNS)]
    if emotion.sum() == 0:
        return None
    if emotion.max() > 1:
        emotion = np.where(emotion > 1, emotion, 0.0)
    target = np.zeros(len(EMOTIONS))
    target[_TO_EMOTIONS] = emotion / emotion.sum()
    return target


def majority_label(votes: np.ndarray) -> int:
    """The ``EMOTIONS`` index with the most emotion votes (ties to the taxonomy's order)."""
    emotion = np.zeros(len(EMOTIONS))
    emotion[_TO_EMOTIONS] = np.asarray(votes, dtype=np.float64)[: len(EMOTION_VOTE_COLUMNS)]
    return int(np.argmax(emotion))


@dataclass
class FerPlusSet:
    """Kept images of one FER+ split: gray crops, soft targets, majority and FER2013 folder labels."""

    split: str
    images: np.ndarray
    targets: np.ndarray
    majority: np.ndarray
    fer2013_labels: np.ndarray
    left_out: int

    def prior(self) -> np.ndarray:
        """Mean soft target: the class prior of this split's training signal."""
        return self.targets.mean(axis=0)


def read_votes(path: str | Path) -> dict[str, tuple[str, np.ndarray]]:
    """Image path (relative to the FER2013 root) -> (split, 10 vote counts)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: FER+ votes file not found (expected {VOTES_FILE} beside train/ and test/)")
    rows: dict[str, tuple[str, np.ndarray]] = {}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("image", "ferplus_image", *VOTE_COLUMNS) if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: not an FER+ votes file (missing columns {missing})")
        for line, row in enumerate(reader, start=2):
            split = SPLITS.get(row["ferplus_image"].split("/", 1)[0])
            if split is None:
                raise InputError(f"{path}:{line}: unknown FER+ split in {row['ferplus_image']!r}")
            rows[row["image"]] = (split, np.array([float(row[c]) for c in VOTE_COLUMNS]))
    return rows


def load_ferplus(root: str | Path, splits: tuple[str, ...] = ("train", "validation", "test"),
                 progress: bool = True) -> dict[str, FerPlusSet]:
    """The kept images of each requested split of the FER2013 folders at ``root`` (rule in the module doc)."""
    root = Path(root)
    votes = read_votes(root / VOTES_FILE)
    picked: dict[str, list[tuple[Path, int, np.ndarray, int]]] = {s: [] for s in splits}
    left_out = dict.fromkeys(splits, 0)
    # FER+ Training images are in train/, PublicTest and PrivateTest in test/: scan only what is asked for
    folders = [f for f, wanted in (("train", "train" in splits), ("test", {"validation", "test"} & set(splits)))
               if wanted]
    for folder in folders:
        index = index_image_folder(root / folder, EMOTIONS)
        for path, label in zip(index.paths, index.label_ids, strict=True):
            entry = votes.get(path.relative_to(root).as_posix())
            if entry is None or entry[0] not in picked:
                continue
            split, counts = entry
            target = soft_target(counts)
            if target is None:
                left_out[split] += 1
                continue
            picked[split].append((path, label, target, majority_label(counts)))
    sets = {}
    for split, rows in picked.items():
        if not rows:
            raise InputError(f"{root}: no FER+ images of split {split!r}")
        chosen = ImageFolderIndex(root=root, labels=EMOTIONS, paths=[r[0] for r in rows],
                                  label_ids=[r[1] for r in rows])
        loaded = load_images(chosen, size=48, progress=progress)
        if loaded.failures:
            raise InputError(f"{loaded.failures[0][0]}: {loaded.failures[0][1]}")
        sets[split] = FerPlusSet(split=split, images=loaded.images,
                                 targets=np.stack([r[2] for r in rows]).astype(np.float32),
                                 majority=np.array([r[3] for r in rows], dtype=np.int64),
                                 fer2013_labels=loaded.label_ids, left_out=left_out[split])
    return sets
