"""RAVDESS name parsing, indexing (with malformed names), AV/audio pairing and actor folds."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

from edge.errors import InputError
from train.data.ravdess import (
    actor_folds,
    index_ravdess,
    parse_take_name,
)


def test_parse_fields_and_properties() -> None:
    take = parse_take_name("Actor_12/01-02-08-02-02-01-12.mp4")
    assert (take.modality, take.vocal_channel, take.emotion, take.intensity, take.statement,
            take.repetition, take.actor) == (1, 2, 8, 2, 2, 1, 12)
    assert take.label == "surprised" and take.label_id == 7
    assert take.take_id == "01-02-08-02-02-01-12"


@pytest.mark.parametrize(("name", "field"), [
    ("03-01-05-02-01-01.flac", "6"),
    ("03-01-05-02-01-01-01-01.flac", "8"),
    ("04-01-05-02-01-01-01.flac", "modality"),
    ("03-03-05-02-01-01-01.flac", "vocal_channel"),
    ("03-01-09-02-01-01-01.flac", "emotion"),
    ("03-01-00-02-01-01-01.flac", "emotion"),
    ("03-01-01-02-01-01-01.flac", "neutral"),
    ("03-01-05-03-01-01-01.flac", "intensity"),
    ("03-01-05-02-03-01-01.flac", "statement"),
    ("03-01-05-02-01-03-01.flac", "repetition"),
    ("03-01-05-02-01-01-25.flac", "actor"),
    ("03-01-05-02-01-01-00.flac", "actor"),
    ("03-01-5-02-01-01-01.flac", "emotion"),
    ("03-01-05-02-01-01-01.ogg", "suffix"),
])
def test_parse_rejects_bad_names_saying_which_field(name: str, field: str) -> None:
    with pytest.raises(ValueError, match=field) as info:
        parse_take_name(name)
    assert name in str(info.value)
    assert isinstance(info.value, InputError)


def test_full_speech_set_parses(ravdess_speech_dir: Path) -> None:
    index = index_ravdess(ravdess_speech_dir)
    assert index.skipped == []
    assert len(index.takes) == 1440
    per_actor = Counter(t.actor for t in index.takes)
    assert sorted(per_actor) == list(range(1, 25))
    assert set(per_actor.values()) == {60}
    per_emotion = Counter(t.label for t in index.takes)
    assert per_emotion["neutral"] == 96 and per_emotion["happy"] == 192
    assert {t.modality for t in index.takes} == {3}


def _touch(root: Path, relative: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def test_index_skips_malformed_names_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = [_touch(tmp_path, "Actor_01/03-01-05-02-01-01-01.wav"),
            _touch(tmp_path, "Actor_02/03-01-01-01-01-01-02.flac")]
    bad = [_touch(tmp_path, "Actor_01/03-01-05-02-01-01.wav"),         # six fields
           _touch(tmp_path, "Actor_01/03-01-09-02-01-01-01.wav"),      # emotion 09
           _touch(tmp_path, "Actor_02/03-01-01-02-01-01-02.wav"),      # neutral, strong
           _touch(tmp_path, "Actor_02/03-01-05-02-01-01-03.wav")]      # actor 03 in Actor_02
    _touch(tmp_path, "Actor_01/notes.txt")                              # not a take: ignored
    _touch(tmp_path, "other/03-01-05-02-01-01-01.wav")                 # not an actor folder
    with caplog.at_level(logging.WARNING, logger="train.data.ravdess"):
        index = index_ravdess(tmp_path)
    assert [t.path for t in index.takes] == good
    assert sorted(p for p, _ in index.skipped) == sorted(bad)
    reasons = dict(index.skipped)
    assert "fields" in reasons[bad[0]] and "emotion" in reasons[bad[1]]
    assert "neutral" in reasons[bad[2]] and "Actor_02" in reasons[bad[3]]
    warned = " ".join(r.getMessage() for r in caplog.records)
    for path in bad:
        assert str(path) in warned


def test_index_rejects_a_folder_without_actor_folders(tmp_path: Path) -> None:
    _touch(tmp_path, "03-01-05-02-01-01-01.wav")
    with pytest.raises(InputError, match="Actor_XX"):
        index_ravdess(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        index_ravdess(tmp_path / "missing")


def test_four_actor_folds_partition_the_actors() -> None:
    folds = actor_folds()
    assert [f.index for f in folds] == [0, 1, 2, 3]
    assert folds[1].test_actors == (7, 8, 9, 10, 11, 12)
    tested = [a for f in folds for a in f.test_actors]
    assert sorted(tested) == list(range(1, 25))
    for fold in folds:
        assert not set(fold.test_actors) & set(fold.train_actors)
        assert sorted(fold.test_actors + fold.train_actors) == list(range(1, 25))
        assert sum(a % 2 for a in fold.test_actors) == 3          # 3 male, 3 female
        assert len(fold.train_actors) == 18


@pytest.mark.parametrize("n_folds", [2, 3, 6, 12])
def test_other_fold_counts_stay_sex_balanced(n_folds: int) -> None:
    folds = actor_folds(n_folds)
    assert sorted(a for f in folds for a in f.test_actors) == list(range(1, 25))
    for fold in folds:
        assert 2 * sum(a % 2 for a in fold.test_actors) == len(fold.test_actors)


@pytest.mark.parametrize("n_folds", [0, 5, 8, 24])
def test_unbalanced_fold_counts_are_refused(n_folds: int) -> None:
    with pytest.raises(ValueError, match="n_folds"):
        actor_folds(n_folds)


