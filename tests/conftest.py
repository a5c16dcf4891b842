"""Shared pytest fixtures: paths to the committed fixtures and to the optional ../shared/data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from edge.demo import DEMO_CLIP

# Property tests explore the same examples on every run, so that CI cannot fail (or pass) by the luck of a
# random draw; HYPOTHESIS_PROFILE=explore draws new ones when you look for bugs.
settings.register_profile("repeatable", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

pytest_plugins = ["mosquitto"]  # the mosquitto_broker fixture (tests/mosquitto.py)

REPO_ROOT = Path(__file__).resolve().parents[1]
# train, export and calibration are top-level packages of the checkout (an installed wheel keeps them inside
# emotion_edge_tools): the tests import them from here, however pytest was started.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
FIXTURES = REPO_ROOT / "tests" / "fixtures"
SHARED_DATA = Path(os.environ.get("EMOTION_EDGE_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def av_clip() -> Path:
    """A real RAVDESS audio-visual take (actor 05, happy): the package's demo clip."""
    return DEMO_CLIP


@pytest.fixture(scope="session")
def speech_flac() -> Path:
    """A real RAVDESS audio-only speech take (actor 01, angry, 16 kHz FLAC)."""
    return FIXTURES / "03-01-05-02-01-01-01.flac"


def _shared_subdir(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent: this test needs the shared data set (set EMOTION_EDGE_DATA)")
    return path


@pytest.fixture(scope="session")
def ravdess_speech_dir() -> Path:
    """../shared/data/ravdess_speech_16k (1440 takes), or skip with the reason."""
    return _shared_subdir("ravdess_speech_16k")


@pytest.fixture(scope="session")
def ravdess_av_dir() -> Path:
    """../shared/data/ravdess_av_actor05 (14 AV takes of actor 05), or skip with the reason."""
    return _shared_subdir("ravdess_av_actor05")


@pytest.fixture(scope="session")
def fer2013_dir() -> Path:
    """../shared/data/fer2013 (train/ and test/ image folders), or skip with the reason."""
    return _shared_subdir("fer2013")


SMALL_ACTORS = (1, 2, 7, 8, 9, 10)     # fold 0 tests 1 and 2; 7..10 give a male+female validation pair


@pytest.fixture(scope="session")
def small_cache(ravdess_speech_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real speech cache of 4 takes per actor (happy and angry, both statements) of ``SMALL_ACTORS``."""
    from train.data.feature_cache import SpeechCacheSpec, build_cache
    from train.data.ravdess import index_ravdess

    takes = [t for t in index_ravdess(ravdess_speech_dir).takes
             if t.actor in SMALL_ACTORS and t.repetition == 1 and t.intensity == 1 and t.emotion in (3, 5)]
    return build_cache(takes, SpeechCacheSpec(), tmp_path_factory.mktemp("cache"), ravdess_speech_dir,
                       workers=2, progress=False).directory
