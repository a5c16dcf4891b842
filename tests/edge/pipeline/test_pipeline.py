"""The pipeline stages: speech windows as offline, fusion and attribution rules (decision level and with a fusion
head), events, and the whole chain."""

from __future__ import annotations

import io
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jsonschema import Draft202012Validator
from payloads import health_body
from tiny_models import fusion_set

from edge.capture.file_replay import FileReplaySource
from edge.capture.queues import DropOldestQueue
from edge.capture.source import CapturedFrame, Emit, Source
from edge.config.schema import Config, OutputConfig, PipelineConfig, SmoothingConfig
from edge.events.envelope import Envelope, json_schema, schema_id
from edge.events.jsonlines import JsonLinesSink
from edge.features.audio import load_audio
from edge.features.mfcc import MfccParams, mfcc_windows
from edge.features.vad import VadParams, speech_segments
from edge.features.video import iter_video_frames
from edge.fusion.decision import decision_fusion
from edge.fusion.head import FusionHeadModel
from edge.models.loading import create_detector
from edge.pipeline.fusion import FusionStage
from edge.pipeline.messages import Posterior, TrackChanges
from edge.pipeline.pipeline import Pipeline
from edge.pipeline.speech import SpeechWindower
from edge.runtime.select import load_backend
from edge.taxonomy import EMOTIONS


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def assert_valid(payloads: list[dict[str, Any]]) -> None:
    """Every payload validates against its topic's schema; seq runs 1, 2, 3 ... per topic."""
    by_topic: dict[str, list[int]] = {}
    for payload in payloads:
        topic = payload["schema"].split("/")[1]
        Draft202012Validator(json_schema(topic)).validate(payload)
        by_topic.setdefault(topic, []).append(payload["seq"])
    for seqs in by_topic.values():
        assert seqs == list(range(1, len(seqs) + 1))


def events(payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in payloads if p["schema"] == "emotion-edge/events/2"]


# --- speech windows --------------------------------------------------------------------------------

@pytest.mark.parametrize("fixture", ["speech_flac", "av_clip"])
def test_streamed_speech_windows_equal_the_offline_windows(fixture: str, request: pytest.FixtureRequest) -> None:
    """Blocks of random sizes through the gate give exactly mfcc_windows of the offline speech segment."""
    signal = load_audio(request.getfixturevalue(fixture))
    mfcc, vad = MfccParams(), VadParams()
    [(start, end)] = speech_segments(signal, 16000, vad)
    windower = SpeechWindower(mfcc, vad)
    windows: list[tuple[np.ndarray, int]] = []
    rng = np.random.default_rng(0)
    position = 0
    while position < len(signal):
        size = int(rng.integers(50, 900))
        windows += windower.feed(signal[position : position + size])
        position += size
    windows += windower.flush()
    first = round(start * 16000)
    offline = mfcc_windows(signal[first : round(end * 16000)], mfcc)
    streamed = np.concatenate([mfcc_windows(samples, mfcc) for samples, _ in windows])
    np.testing.assert_array_equal(streamed, offline)
    ends = [first + k * mfcc.hop_samples + mfcc.window_samples for k in range(len(windows))]
    assert [end for _, end in windows] == ends


def test_a_short_utterance_becomes_one_padded_window(speech_flac: Path) -> None:
    voiced = load_audio(speech_flac)[12000:16800]  # 0.3 s of speech between silences: a 0.84 s segment
    signal = np.concatenate([np.zeros(8000, np.float32), voiced, np.zeros(16000, np.float32)])
    windower = SpeechWindower(MfccParams(), VadParams())
    windows = windower.feed(signal)
    assert not windower.in_speech
    assert len(windows) == 1 and len(windows[0][0]) < MfccParams().window_samples


# --- fusion ----------------------------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def one_hot(label: str, weight: float = 0.9) -> np.ndarray:
    p = np.full(len(EMOTIONS), (1 - weight) / (len(EMOTIONS) - 1))
    p[EMOTIONS.index(label)] = weight
    return p


def fusion_settings() -> Config:
    """No smoothing, a one-update hold, fusion within 1 s, state and stats only once a minute."""
    return Config(pipeline=PipelineConfig(fusion_tolerance_s=1.0, voice_timeout_s=3.0),
                  smoothing=SmoothingConfig(ema_alpha=1.0, hysteresis=0.1, hold=1),
                  output=OutputConfig(state_interval_s=60, stats_interval_s=60))


@pytest.fixture
def fusion() -> tuple[FusionStage, io.StringIO, FakeClock]:
    stream, clock = io.StringIO(), FakeClock()
    sink = JsonLinesSink(Envelope("test"), stream)
    params = fusion_settings()
    stage = FusionStage(DropOldestQueue("results", 10), sink, params, lambda: False, lambda: {}, clock,
                        health=health_body)
    return stage, stream, clock


def test_one_face_and_a_voice_are_fused_by_decision(fusion: tuple[FusionStage, io.StringIO, FakeClock]) -> None:
    stage, stream, clock = fusion
    stage.process([TrackChanges(t=100.0, present=(1,), appeared=(1,), lost=())])
    stage.process([Posterior("face", 1, one_hot("happy"), 100.1)])
    clock.now = 100.6
    stage.process([Posterior("speech", None, one_hot("happy", 0.5), 100.5)])
    stage.process([Posterior("speech", None, one_hot("angry", 0.99), 102.0)])  # face 1.9 s old: speech alone
    stage.process([TrackChanges(t=103.0, present=(), appeared=(), lost=(1,))])
    published = lines(stream)
    assert_valid(published)
    got = [(e["event"], e["track_id"], e["label"], e["fusion"], e["speech_attribution"]) for e in events(published)]
    assert got == [
        ("track_appeared", 1, None, "none", "none"),
        ("emotion_changed", 1, "happy", "face_only", "none"),
        ("emotion_changed", 1, "angry", "speech_only", "sole_face"),
        ("track_lost", 1, "angry", "speech_only", "sole_face"),
    ]
    fused = events(published)[2:]
    assert fused[0]["modalities"] == ["speech"] and fused[0]["capture_ts"] == 102.0
    state = [p for p in published if p["schema"] == schema_id("state")][-1]
    assert state["tracks"] == []


def test_the_fused_posterior_is_the_decision_fusion_of_both(fusion: tuple[FusionStage, io.StringIO, FakeClock]) -> None:
    stage, stream, clock = fusion
    stage.process([TrackChanges(t=100.0, present=(1,), appeared=(1,), lost=())])
    stage.process([Posterior("face", 1, one_hot("happy", 0.6), 100.0)])
    clock.now = 100.5
    stage.process([Posterior("speech", None, one_hot("sad", 0.9), 100.4)])
    last = stage.tracks[1].last
    assert last is not None and stage.tracks[1].basis["fusion"] == "decision"
    expected = one_hot("happy", 0.6) * one_hot("sad", 0.9)
    np.testing.assert_allclose(last.posterior, expected / expected.sum())
    assert stage.tracks[1].basis == {"modalities": ["face", "speech"], "fusion": "decision",
                                     "speech_attribution": "sole_face"}


def test_weight_by_confidence_reaches_the_daemons_fusion() -> None:
    stream, clock = io.StringIO(), FakeClock()
    settings = fusion_settings()
    settings = replace(settings, pipeline=replace(settings.pipeline, weight_by_confidence=True, face_weight=3.0))
    stage = FusionStage(DropOldestQueue("results", 10), JsonLinesSink(Envelope("test"), stream), settings,
                        lambda: False, lambda: {}, clock, health=health_body)
    unsure_face = np.full(len(EMOTIONS), 0.1)
    unsure_face[EMOTIONS.index("happy")] = 0.4
    stage.process([TrackChanges(t=100.0, present=(1,), appeared=(1,), lost=())])
    stage.process([Posterior("face", 1, unsure_face, 100.0)])
    clock.now = 100.5
    stage.process([Posterior("speech", None, one_hot("sad", 0.9), 100.4)])
    last = stage.tracks[1].last
    assert last is not None and EMOTIONS[last.label] == "sad"   # fixed weights would let the 3x face say happy
    assert decision_fusion({"face": unsure_face, "speech": one_hot("sad", 0.9)},
                           {"face": 3.0, "speech": 1.0}).argmax() == EMOTIONS.index("happy")


def test_weak_evidence_is_published_as_uncertain_and_valid(fusion: tuple[FusionStage, io.StringIO, FakeClock]) -> None:
    stream, clock = io.StringIO(), FakeClock()
    settings = fusion_settings()
    settings = replace(settings, smoothing=replace(settings.smoothing, min_confidence=0.6))
    stage = FusionStage(DropOldestQueue("results", 10), JsonLinesSink(Envelope("test"), stream), settings,
                        lambda: False, lambda: {}, clock, health=health_body)
    stage.process([TrackChanges(t=100.0, present=(1,), appeared=(1,), lost=())])
    stage.process([Posterior("face", 1, one_hot("happy", 0.4), 100.0)])
    stage.process([Posterior("face", 1, one_hot("happy", 0.9), 100.2)])
    published = [json.loads(line) for line in stream.getvalue().splitlines()]
    changed = [e for e in events(published) if e["event"] == "emotion_changed"]
    assert [(e["label"], e["confidence"]) for e in changed] == [("uncertain", 0.4), ("happy", 0.9)]
    states = [p for p in published if p["schema"] == schema_id("state")]
    assert [s["tracks"][0]["label"] for s in states[-2:]] == ["uncertain", "happy"]
    for payload in published:
        topic = payload["schema"].split("/")[1]
        Draft202012Validator(json_schema(topic)).validate(payload)


def test_several_faces_and_a_voice_keep_speech_unattributed(fusion: tuple[FusionStage, io.StringIO, FakeClock]) -> None:
    stage, stream, clock = fusion
    stage.process([TrackChanges(t=100.0, present=(1, 2), appeared=(1, 2), lost=())])
    stage.process([Posterior("speech", None, one_hot("sad"), 100.2)])
    stage.process([Posterior("face", 1, one_hot("happy"), 100.3), Posterior("face", 2, one_hot("neutral"), 100.3)])
    clock.now = 103.0
    stage.tick()  # voice heard 2.8 s ago: still there
    clock.now = 103.3
    stage.tick()  # 3.1 s: the voice is lost
    published = lines(stream)
    assert_valid(published)
    got = [(e["event"], e["track_id"], e["label"], e["fusion"], e["speech_attribution"]) for e in events(published)]
    assert got == [
        ("track_appeared", 1, None, "none", "none"),
        ("track_appeared", 2, None, "none", "none"),
        ("track_appeared", 0, "sad", "speech_only", "unattributed"),
        ("emotion_changed", 1, "happy", "face_only", "unattributed"),
        ("emotion_changed", 2, "neutral", "face_only", "unattributed"),
        ("track_lost", 0, "sad", "speech_only", "unattributed"),
    ]


def test_a_late_crop_of_a_lost_track_is_ignored(fusion: tuple[FusionStage, io.StringIO, FakeClock]) -> None:
    stage, stream, _ = fusion
    stage.process([TrackChanges(t=100.0, present=(1,), appeared=(1,), lost=())])
    stage.process([TrackChanges(t=100.5, present=(), appeared=(), lost=(1,))])
    stage.process([Posterior("face", 1, one_hot("happy"), 100.4)])
    assert [e["event"] for e in events(lines(stream))] == ["track_appeared", "track_lost"]
    assert stage.tracks == {}


# --- fusion with a fusion head (real ONNX Runtime, tiny models) ------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Face favours happy, speech sad, the fusion head over their embeddings surprised."""
    return fusion_set(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def head(tiny: dict[str, Path]) -> FusionHeadModel:
    return FusionHeadModel(load_backend(tiny["fusion"]), speech=load_backend(tiny["speech"]),
                           face=load_backend(tiny["face"]))


@pytest.fixture
def head_fusion(head: FusionHeadModel) -> tuple[FusionStage, io.StringIO, FakeClock]:
    stream, clock = io.StringIO(), FakeClock()
    params = fusion_settings()
    stage = FusionStage(DropOldestQueue("results", 10), JsonLinesSink(Envelope("test"), stream), params,
                        lambda: False, lambda: {}, clock, head, health=health_body)
    return stage, stream, clock


def embedding(size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=size).astype(np.float32)


def test_a_fusion_head_fuses_face_and_speech_and_decision_fusion_covers_a_missing_modality(
    head_fusion: tuple[FusionStage, io.StringIO, FakeClock], head: FusionHeadModel
) -> None:
    stage, stream, clock = head_fusion
    face, speech = embedding(7, 1), embedding(8, 2)
    stage.process([TrackChanges(t=100.0, present=(1,), appeared=(1,), lost=())])
    stage.process([Posterior("face", 1, one_hot("happy"), 100.1, face)])
    assert stage.tracks[1].basis["fusion"] == "face_only"
    clock.now = 100.6
    stage.process([Posterior("speech", None, one_hot("sad"), 100.5, speech)])
    last = stage.tracks[1].last
    assert last is not None and stage.tracks[1].basis["fusion"] == "model"
    np.testing.assert_allclose(last.posterior, head.posterior(speech, face))
    assert EMOTIONS[int(last.posterior.argmax())] == "surprised"  # neither happy (face) nor sad (speech)
    stage.process([Posterior("speech", None, one_hot("angry", 0.99), 102.0, speech)])  # face 1.9 s old
    assert stage.tracks[1].basis["fusion"] == "speech_only"
    stage.process([TrackChanges(t=103.0, present=(), appeared=(), lost=(1,))])
    published = lines(stream)
    assert_valid(published)
    got = [(e["event"], e["label"], e["fusion"], e["modalities"]) for e in events(published)]
    assert got == [
        ("track_appeared", None, "none", []),
        ("emotion_changed", "happy", "face_only", ["face"]),
        ("emotion_changed", "surprised", "model", ["face", "speech"]),
        ("emotion_changed", "angry", "speech_only", ["speech"]),
        ("track_lost", "angry", "speech_only", ["speech"]),
    ]
    states = [p for p in published if p["schema"] == schema_id("state")]
    assert [s["tracks"][0]["fusion"] for s in states if s["tracks"]] == ["none", "face_only", "model", "speech_only"]


def test_without_both_embeddings_or_with_several_faces_the_head_is_not_used(
    head_fusion: tuple[FusionStage, io.StringIO, FakeClock],
) -> None:
    stage, stream, clock = head_fusion
    stage.process([TrackChanges(t=100.0, present=(1,), appeared=(1,), lost=())])
    stage.process([Posterior("face", 1, one_hot("happy", 0.6), 100.0)])           # a model without embeddings
    stage.process([Posterior("speech", None, one_hot("sad", 0.9), 100.2, embedding(8, 0))])
    last = stage.tracks[1].last
    assert last is not None and stage.tracks[1].basis["fusion"] == "decision"
    expected = decision_fusion({"face": one_hot("happy", 0.6), "speech": one_hot("sad", 0.9)}, {"face": 1, "speech": 1})
    np.testing.assert_allclose(last.posterior, expected)
    stage.process([TrackChanges(t=100.3, present=(1, 2), appeared=(2,), lost=())])
    stage.process([Posterior("face", 2, one_hot("neutral"), 100.4, embedding(7, 3)),
                   Posterior("speech", None, one_hot("sad"), 100.5, embedding(8, 4))])
    assert stage.tracks[2].basis["fusion"] == "face_only"    # speech is not attributed with two faces
    assert stage.tracks[0].basis["fusion"] == "speech_only"  # the voice
    assert_valid(lines(stream))


# --- the whole chain -------------------------------------------------------------------------------

def run_pipeline(
    sources: list[Source], tiny: dict[str, Path], settings: PipelineConfig | None = None,
    head: FusionHeadModel | None = None,
) -> tuple[Pipeline, list[dict[str, Any]]]:
    stream = io.StringIO()
    sink = JsonLinesSink(Envelope("test"), stream)
    pipeline = Pipeline(sources, sink, face_model=load_backend(tiny["face"]), speech_model=load_backend(tiny["speech"]),
                        detector=create_detector(), fusion_head=head,
                        config=Config(pipeline=settings or PipelineConfig()))
    pipeline.start()
    deadline = time.monotonic() + 30
    while not pipeline.sources_ended() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pipeline.shutdown(timeout=30)
    sink.close()
    assert pipeline.error is None
    return pipeline, lines(stream)


def test_the_clip_runs_through_every_stage_to_valid_events(av_clip: Path, tiny: dict[str, Path]) -> None:
    pipeline, published = run_pipeline([FileReplaySource(av_clip, realtime=False)], tiny)
    assert_valid(published)
    got = [(e["event"], e["track_id"], e["label"]) for e in events(published)]
    assert got[:2] == [("track_appeared", 1, None), ("emotion_changed", 1, "happy")]
    assert {e["track_id"] for e in events(published)} == {1}  # one face; its voice is fused into it
    fused = [e for e in events(published) if e["fusion"] == "decision"]
    assert all(e["speech_attribution"] == "sole_face" for e in fused)
    stats = [p for p in published if p["schema"] == "emotion-edge/stats/2"][-1]
    assert stats["frames_captured"] == 97 and stats["frames_dropped"] == 0  # lossless replay
    assert stats["audio_dropped"] == 0 and stats["audio_blocks"] == 163
    assert pipeline.face_cnn is not None and pipeline.speech is not None
    capture_ts = [e["capture_ts"] for e in events(published)]
    assert capture_ts == sorted(capture_ts)


def test_with_a_fusion_head_the_clip_is_fused_by_the_head_where_face_and_speech_meet(
    av_clip: Path, tiny: dict[str, Path], head: FusionHeadModel
) -> None:
    _, published = run_pipeline([FileReplaySource(av_clip, realtime=False)], tiny, head=head)
    assert_valid(published)
    changes = [(e["label"], e["fusion"]) for e in events(published) if e["event"] == "emotion_changed"]
    assert changes[0] == ("happy", "face_only")            # the face comes first; the head needs both
    assert ("surprised", "model") in changes                # then face and voice together: the head's label
    assert {fusion for _, fusion in changes} <= {"face_only", "speech_only", "model"}  # never decision
    tracks = [t for p in published if p["schema"] == schema_id("state") for t in p["tracks"]]
    assert "model" in {t["fusion"] for t in tracks}


class BurstCamera(Source):
    """A live source that delivers the clip's frames as fast as it can decode them (faster than detection)."""

    video = True

    def __init__(self, path: Path) -> None:
        super().__init__("burst")
        self.path = path

    def _capture(self, emit: Emit) -> None:
        for index, frame in enumerate(iter_video_frames(self.path)):
            emit(CapturedFrame(self.clock(), index, frame.image))


def test_a_live_source_faster_than_the_pipeline_loses_the_oldest_frames_counted(
    av_clip: Path, tiny: dict[str, Path]
) -> None:
    pipeline, published = run_pipeline([BurstCamera(av_clip)], tiny, PipelineConfig(frame_queue=2))
    assert pipeline.frames is not None
    stats = [p for p in published if p["schema"] == "emotion-edge/stats/2"][-1]
    assert stats["frames_captured"] == 97
    assert stats["frames_dropped"] == pipeline.frames.dropped > 0
    assert pipeline.frames_processed.total == 97 - stats["frames_dropped"]


def test_tracks_still_open_at_shutdown_are_lost_and_the_last_state_is_empty(
    head_fusion: tuple[FusionStage, io.StringIO, FakeClock],
) -> None:
    stage, stream, clock = head_fusion
    stage.process([TrackChanges(t=100.0, present=(1,), appeared=(1,), lost=())])
    stage.process([Posterior("face", 1, one_hot("happy"), 100.1)])
    stage.process([Posterior("speech", None, one_hot("sad"), 100.2)])
    stage.process([TrackChanges(t=100.3, present=(1, 2), appeared=(2,), lost=())])
    stage.process([Posterior("speech", None, one_hot("sad"), 100.4)])   # two faces: the voice is track 0
    clock.now = 101.0
    stage.finish()
    published = [p for p in lines(stream) if p["schema"] != schema_id("stats")]   # this fixture's stats are empty
    assert_valid(published)
    lost = [(e["track_id"], e["capture_ts"]) for e in events(published) if e["event"] == "track_lost"]
    assert sorted(lost) == [(0, 101.0), (1, 101.0), (2, 101.0)]
    states = [p for p in published if p["schema"] == schema_id("state")]
    assert states[-1]["tracks"] == [] and not stage.tracks
