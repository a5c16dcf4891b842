"""RAVDESS file names, the dataset index and the speaker-independent (actor) folds.

A RAVDESS take is named ``MM-VV-EE-II-SS-RR-AA`` (modality, vocal channel, emotion, intensity,
statement, repetition, actor) and lives in ``Actor_AA/`` in the original layout. This module parses
and validates those names, indexes a folder of takes (skipping and counting malformed names) and
defines the actor folds, so that no speaker is ever in both the training and the test set.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from edge.errors import InputError
from edge.taxonomy import RAVDESS_LABELS

log = logging.getLogger(__name__)

MEDIA_SUFFIXES: frozenset[str] = frozenset({".wav", ".flac", ".mp4"})
N_ACTORS = 24
MODALITIES: dict[int, str] = {1: "audio-visual", 2: "video-only", 3: "audio-only"}
VOCAL_CHANNELS: dict[int, str] = {1: "speech", 2: "song"}
INTENSITIES: dict[int, str] = {1: "normal", 2: "strong"}
STATEMENTS: dict[int, str] = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}

_ACTOR_FOLDER = re.compile(r"^Actor_(\d{2})$")
_FIELD_NAMES = ("modality", "vocal_channel", "emotion", "intensity", "statement", "repetition", "actor")
_VALID: dict[str, Iterable[int]] = {
    "modality": MODALITIES,
    "vocal_channel": VOCAL_CHANNELS,
    "emotion": range(1, len(RAVDESS_LABELS) + 1),
    "intensity": INTENSITIES,
    "statement": STATEMENTS,
    "repetition": (1, 2),
    "actor": range(1, N_ACTORS + 1),
}


@dataclass(frozen=True)
class RavdessTake:
    """One RAVDESS recording, its name fields decoded (codes as in the file name, 1-based)."""

    path: Path
    modality: int
    vocal_channel: int
    emotion: int
    intensity: int
    statement: int
    repetition: int
    actor: int

    @property
    def take_id(self) -> str:
        """The file name without its suffix, e.g. ``03-01-05-02-01-01-01``."""
        return self.path.stem

    @property
    def label(self) -> str:
        """The emotion name from ``edge.taxonomy.RAVDESS_LABELS``."""
        return RAVDESS_LABELS[self.emotion - 1]

    @property
    def label_id(self) -> int:
        """The 0-based index of the emotion in ``RAVDESS_LABELS``."""
        return self.emotion - 1


def parse_take_name(path: str | Path) -> RavdessTake:
    """Parse and validate a RAVDESS file name; raise ``InputError`` naming the file and the bad field."""
    path = Path(path)
    if path.suffix.lower() not in MEDIA_SUFFIXES:
        raise InputError(f"{path}: suffix {path.suffix!r} is not one of {sorted(MEDIA_SUFFIXES)}")
    parts = path.stem.split("-")
    if len(parts) != len(_FIELD_NAMES):
        raise InputError(f"{path}: expected {len(_FIELD_NAMES)} dash-separated fields "
                         f"MM-VV-EE-II-SS-RR-AA, found {len(parts)}")
    values: dict[str, int] = {}
    for name, text in zip(_FIELD_NAMES, parts, strict=True):
        if len(text) != 2 or not text.isdigit():
            raise InputError(f"{path}: field {name} is {text!r}, expected two digits")
        value = int(text)
        if value not in _VALID[name]:
            allowed = sorted(_VALID[name])
            raise InputError(f"{path}: field {name} is {text}, expected {allowed[0]:02d}..{allowed[-1]:02d}")
        values[name] = value
    if values["emotion"] == 1 and values["intensity"] == 2:
        raise InputError(f"{path}: field intensity is 02 (strong), but neutral (emotion 01) has no strong "
                         "intensity")
    return RavdessTake(path=path, **values)


@dataclass
class RavdessIndex:
    """The takes found under a RAVDESS root, and the files skipped with the reason for each."""

    takes: list[RavdessTake]
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def index_ravdess(root: str | Path) -> RavdessIndex:
    """Index the media files in ``root/Actor_XX/`` (the original RAVDESS layout), sorted by path.

    A file with a media suffix (.wav, .flac, .mp4) whose name does not parse, or whose actor field
    differs from its ``Actor_XX`` folder, is skipped with a warning and listed in ``skipped``. Files
    with other suffixes are not takes and are ignored. Raises ``InputError`` when ``root`` is not a
    folder or holds no ``Actor_XX`` folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder (expected a RAVDESS root holding Actor_XX/ folders)")
    actor_dirs = sorted(p for p in root.iterdir() if p.is_dir() and _ACTOR_FOLDER.match(p.name))
    if not actor_dirs:
        raise InputError(f"{root}: no Actor_XX folders (expected the original RAVDESS layout "
                         "Actor_01/03-01-01-01-01-01-01.wav ...)")
    index = RavdessIndex(takes=[])
    for actor_dir in actor_dirs:
        folder_actor = int(actor_dir.name.removeprefix("Actor_"))
        for path in sorted(actor_dir.iterdir()):
            if not path.is_file() or path.suffix.lower() not in MEDIA_SUFFIXES:
                continue
            try:
                take = parse_take_name(path)
                if take.actor != folder_actor:
                    raise InputError(f"{path}: actor field {take.actor:02d} does not match its folder "
                                     f"{actor_dir.name}")
            except InputError as err:
                log.warning("skipping %s", err)
                index.skipped.append((path, str(err)))
                continue
            index.takes.append(take)
    return index


@dataclass(frozen=True)
class Fold:
    """One cross-validation fold: the actors held out for testing and those trained on."""

    index: int
    test_actors: tuple[int, ...]
    train_actors: tuple[int, ...]


def actor_folds(n_folds: int = 4) -> list[Fold]:
    """Speaker-independent folds: fold k tests a block of consecutive actors and trains on the rest.

    With the default 4 folds, fold k (0-based) tests actors 6k+1..6k+6. Every block starts at an odd
    actor and has an even size, so each test set holds as many male as female actors; ``n_folds``
    must therefore be 2, 3, 4, 6 or 12 (else ``ValueError``).
    """
    if n_folds <= 0 or N_ACTORS % n_folds or (N_ACTORS // n_folds) % 2:
        raise ValueError(f"n_folds={n_folds}: must split {N_ACTORS} actors into equal blocks of even "
                         "size (2, 3, 4, 6 or 12 folds)")
    size = N_ACTORS // n_folds
    actors = range(1, N_ACTORS + 1)
    folds = []
    for k in range(n_folds):
        test = tuple(range(size * k + 1, size * (k + 1) + 1))
        folds.append(Fold(index=k, test_actors=test, train_actors=tuple(a for a in actors if a not in test)))
    return folds
