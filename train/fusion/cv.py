"""The 24-actor audio-visual protocol: cross-validated model-level fusion trained on real time-aligned AV pairs.

The protocol for a user who has the audio-visual clips of all 24 RAVDESS actors (``folds_by
"actor"``): fold k tests actors 6k+1..6k+6 (``train.data.ravdess.actor_folds``, as the speech CV).
A fold runs when the cache holds some of its test actors and some training actors; otherwise it
is skipped with the reason. The fusion head is trained on real pairs from the training actors'
clips: every speech window with every face seen during it (``train.data.av_windows``); its best
epoch is chosen on one male and one female training actor held out
(``train.speech.training.validation_split``); it is scored on the test actors' windows, each with its
key face, beside speech only, face only and decision fusion (``train.fusion.eval``). Encoders
are frozen: per fold a speech model that never heard the fold's test actors (checked against the
actors it records; anything else is refused) and the face model (FER2013 only).

``folds_by "take"`` is a SMOKE / PROTOCOL CHECK for a cache with one actor (actor 05 here, where
no actor fold has both test and training actors): folds split the takes by (statement,
repetition): fold k tests group k, the next non-empty group validates, the others train.
Training and test share the speaker, so it is not an actor-independent result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edge.errors import InputError
from train.data.av_windows import AlignedWindows
from train.data.ravdess import actor_folds, parse_take_name
from train.fusion.data import Encoded, Encoder, encode, to_emotion_ids
from train.fusion.eval import (
    aligned_posteriors,
    daemon_weights,
    key_face_pairs,
    method_rows,
    score_methods,
    scores_to_dict,
    window_rows,
)
from train.fusion.training import HeadSettings, model_summary, train_head
from train.speech.training import validation_split

N_FOLDS = 4
FOLD_MODES = ("actor", "take")
TAKE_GROUPS: tuple[tuple[int, int], ...] = ((1, 1), (1, 2), (2, 1), (2, 2))
"""(statement, repetition) of the take folds, in fold order."""
SMOKE_NOTE = ("SMOKE / PROTOCOL CHECK, NOT an actor-independent result: the folds split the takes of the same "
              "actor(s) by statement and repetition, so training and test share the speaker")


@dataclass(frozen=True)
class AvFold:
    """One fold: the takes it tests, validates (model selection) and trains on, or why it was skipped."""

    index: int
    name: str
    test: tuple[str, ...] = ()
    validation: tuple[str, ...] = ()
    train: tuple[str, ...] = ()
    test_actors: tuple[int, ...] = ()
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _actor(take_id: str) -> int:
    return parse_take_name(f"{take_id}.mp4").actor


def actor_av_folds(take_ids: Sequence[str], seed: int) -> list[AvFold]:
    """The four actor folds over the takes present; a fold without test or training actors is skipped."""
    actors = {take: _actor(take) for take in take_ids}
    present = set(actors.values())
    folds = []
    for fold in actor_folds(N_FOLDS):
        name = f"actors {fold.test_actors[0]}-{fold.test_actors[-1]}"
        test_actors = tuple(sorted(present & set(fold.test_actors)))
        train_actors = sorted(present & set(fold.train_actors))
        if not test_actors:
            folds.append(AvFold(fold.index, name, skipped=f"none of its test actors is in the cache (it holds "
                                                          f"actors {sorted(present)})"))
            continue
        if not train_actors:
            folds.append(AvFold(fold.index, name, test_actors=test_actors,
                                skipped=f"no training actor in the cache (it holds only actors {sorted(present)})"))
            continue
        try:
            fit_actors, val_actors = validation_split(train_actors, seed)
        except InputError:
            folds.append(AvFold(fold.index, name, test_actors=test_actors,
                                skipped=f"training actors {train_actors}: need two male and two female to hold one "
                                        "of each out for model selection"))
            continue
        folds.append(AvFold(fold.index, name, test_actors=test_actors,
                            test=tuple(t for t, a in actors.items() if a in test_actors),
                            validation=tuple(t for t, a in actors.items() if a in val_actors),
                            train=tuple(t for t, a in actors.items() if a in fit_actors)))
    return folds


def take_av_folds(take_ids: Sequence[str]) -> list[AvFold]:
    """Folds over (statement, repetition) groups of takes (a smoke/protocol check; see the module docstring)."""
    groups: dict[tuple[int, int], list[str]] = {group: [] for group in TAKE_GROUPS}
    for take in take_ids:
        parsed = parse_take_name(f"{take}.mp4")
        groups[(parsed.statement, parsed.repetition)].append(take)
    folds = []
    for k, group in enumerate(TAKE_GROUPS):
        name = f"statement {group[0]}, repetition {group[1]}"
        others = [TAKE_GROUPS[(k + j) % len(TAKE_GROUPS)] for j in range(1, len(TAKE_GROUPS))]
        others = [g for g in others if groups[g]]
        if not groups[group]:
            folds.append(AvFold(k, name, skipped="no takes of this statement and repetition in the cache"))
        elif len(others) < 2:
            folds.append(AvFold(k, name, skipped="needs takes of two other (statement, repetition) groups: one to "
                                                 "validate, one to train on"))
        else:
            test = tuple(groups[group])
            folds.append(AvFold(k, name, test=test, validation=tuple(groups[others[0]]),
                                train=tuple(t for g in others[1:] for t in groups[g]),
                                test_actors=tuple(sorted({_actor(t) for t in test}))))
    return folds


def plan_folds(take_ids: Sequence[str], by: str, seed: int) -> list[AvFold]:
    """``actor_av_folds`` or ``take_av_folds``."""
    if by == "actor":
        return actor_av_folds(take_ids, seed)
    if by == "take":
        return take_av_folds(take_ids)
    raise ValueError(f"unknown fold mode {by!r}; choose one of {FOLD_MODES}")


def speech_model_path(fold: AvFold, by: str, speech_cv: Path | None, speech_model: Path | None) -> Path:
    """The speech model for ``fold``: ``speech_model`` for every fold, or a fold model of ``speech_cv``.

    From ``speech_cv`` (an ``emotion-bench speech`` output folder), an actor fold k takes
    ``fold<k>/checkpoint.pt``; a take fold takes the actor fold that tests all of its actors.
    """
    if speech_model is not None:
        return speech_model
    if speech_cv is None:
        raise InputError("give a speech model (--speech-model) or a speech CV folder (--speech-cv)")
    if by == "actor":
        index = fold.index
    else:
        matching = [f.index for f in actor_folds(N_FOLDS) if set(fold.test_actors) <= set(f.test_actors)]
        if not matching:
            raise InputError(f"fold {fold.index} ({fold.name}) tests actors {list(fold.test_actors)}, which no single "
                             "speech CV fold leaves out: give --speech-model")
        index = matching[0]
    return speech_cv / f"fold{index}" / "checkpoint.pt"


def real_pairs(aligned: AlignedWindows, speech_embedding: torch.Tensor,
               face_embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every window with every face seen during it: (concatenated embeddings, ``EMOTIONS`` ids).

    ``speech_embedding`` has one row per window, ``face_embedding`` one per crop of ``aligned.crops``.
    """
    counts = [len(faces) for faces in aligned.faces]
    window_index = np.repeat(np.arange(len(aligned)), counts)
    face_rows = np.concatenate(aligned.faces)
    x = torch.cat([speech_embedding[window_index], face_embedding[face_rows]], dim=1)
    return x, torch.from_numpy(to_emotion_ids(aligned.label_ids)[window_index])


def run_fold(aligned: AlignedWindows, fold: AvFold, speech: Encoder, faces: Encoded, settings: HeadSettings,
             out: Path) -> dict[str, Any]:
    """Train fold ``fold``'s head (resuming its checkpoint) on real pairs and score every method on its test takes."""
    parts = {"train": aligned.subset(fold.train), "validation": aligned.subset(fold.validation),
             "test": aligned.subset(fold.test)}
    empty = [name for name, part in parts.items() if len(part) == 0]
    if empty:
        return {**fold.to_dict(), "skipped": f"no speech window with a face in its {' and '.join(empty)} takes"}
    speech_out = {name: encode(speech, torch.from_numpy(part.windows)) for name, part in parts.items()}
    train_xy = real_pairs(parts["train"], speech_out["train"][0], faces[0])
    validation = parts["validation"]
    val_xy = (key_face_pairs(validation, speech_out["validation"][0], faces[0]),
              torch.from_numpy(to_emotion_ids(validation.label_ids)))
    directory = out / f"fold{fold.index}"
    directory.mkdir(parents=True, exist_ok=True)
    trained = train_head(train_xy, val_xy, speech.embedding_size, settings, checkpoint=directory / "checkpoint.pt",
                         log_path=out / "train_log.jsonl", description=f"fusion fold {fold.index}")
    test = parts["test"]
    posteriors = aligned_posteriors(test, speech_out["test"], faces, trained.head, daemon_weights())
    truth = to_emotion_ids(test.label_ids)
    scores = score_methods(posteriors, truth, test.take_ids)
    return {
        **fold.to_dict(), "speech_model": speech.describe(),
        "train_pairs": len(train_xy[1]), "train_windows": len(parts["train"]),
        "validation_windows": len(validation), "test_windows": len(test),
        "test_clips": len(set(test.take_ids.tolist())), "windows_without_face": test.without_face,
        "best_epoch": trained.fit.best_epoch, "best_val_accuracy": trained.fit.best_val_accuracy,
        "head": model_summary(trained.head), "seconds": round(trained.seconds, 1),
        "methods": method_rows(posteriors, scores, truth, test.take_ids),
        "scores": scores_to_dict(scores),
        "confusion": {method: {name: s.confusion for name, s in by.items()} for method, by in scores.items()},
        "windows": window_rows(test, posteriors),
    }
