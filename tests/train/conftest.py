"""Fixtures of the training tests: a small real RAVDESS speech cache, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from train.data.feature_cache import SpeechCacheSpec, build_cache
from train.data.ravdess import index_ravdess

SMALL_ACTORS = (1, 2, 7, 8, 9, 10)     # fold 0 tests 1 and 2; 7..10 give a male+female validation pair


@pytest.fixture(scope="session")
def small_cache(ravdess_speech_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real speech cache of 4 takes per actor (happy and angry, both statements) of ``SMALL_ACTORS``."""
    takes = [t for t in index_ravdess(ravdess_speech_dir).takes
             if t.actor in SMALL_ACTORS and t.repetition == 1 and t.intensity == 1 and t.emotion in (3, 5)]
    return build_cache(takes, SpeechCacheSpec(), tmp_path_factory.mktemp("cache"), ravdess_speech_dir,
                       workers=2, progress=False).directory
