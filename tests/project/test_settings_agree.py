"""One definition of every shared setting: the daemon, classify, features and the training caches agree.

The committed example config is checked against the schema in tests/edge/config/test_config.py;
here each other consumer is checked to start from the same values, so that no default exists twice.
"""

from __future__ import annotations

import dataclasses

from edge.app.cli import build_parser, classify_config, run_config, with_flags
from edge.capture import FILE_SCHEME
from edge.config.schema import Config
from edge.demo import DEMO_CLIP
from edge.features.alignment import AlignParams
from edge.features.mfcc import MfccParams
from edge.features.vad import VadParams
from edge.models import FACE_MODEL, SPEECH_MODEL
from edge.sidecar import read_sidecar
from train.data.feature_cache import AvCacheSpec, SpeechCacheSpec


def test_classify_and_features_without_flags_use_the_daemons_configuration() -> None:
    parser = build_parser()
    assert classify_config(parser.parse_args(["classify", "clip.mp4"])) == Config()
    features = parser.parse_args(["features", "clip.mp4"])
    assert with_flags(features, {}) == Config()


def test_the_daemon_without_flags_is_the_defaults_on_the_demo_clip() -> None:
    config = run_config(build_parser().parse_args(["run"]))
    assert config == dataclasses.replace(Config(), source=dataclasses.replace(
        Config().source, video=f"{FILE_SCHEME}{DEMO_CLIP}"))


def test_flags_set_the_same_keys_as_the_config() -> None:
    args = build_parser().parse_args(["classify", "--key-face-radius", "4", "--score-threshold", "0.8",
                                      "--face-weight", "2", "clip.mp4"])
    config = classify_config(args)
    assert (config.pipeline.key_face_radius, config.detector.score_threshold, config.pipeline.face_weight) == (
        4, 0.8, 2.0)


def test_the_training_caches_make_what_the_device_computes() -> None:
    config = Config()
    av = AvCacheSpec()
    assert av.key_face_radius == config.pipeline.key_face_radius
    assert av.detector == config.detector
    speech, face = read_sidecar(SPEECH_MODEL), read_sidecar(FACE_MODEL)
    assert SpeechCacheSpec().mfcc == MfccParams(**speech.features["mfcc"]) == av.mfcc
    assert SpeechCacheSpec().vad == VadParams(**speech.features["vad"]) == av.vad
    assert av.align == AlignParams(**face.features["align"])
