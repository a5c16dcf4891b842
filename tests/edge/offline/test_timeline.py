"""classify --timeline: posteriors over time per face track and for speech, fused, drawn as a PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.app.cli import main
from edge.config.schema import Config
from edge.demo import DEMO_CLIP
from edge.models.loading import load_models
from edge.offline.classify import Classifier
from edge.offline.timeline import build_timeline


def test_the_demo_clip_has_one_face_track_and_voiced_speech() -> None:
    classifier = Classifier(load_models(Config(), video=True, audio=True), Config(), every_nth=3)
    timeline = build_timeline(classifier, DEMO_CLIP)
    (track,) = timeline.tracks
    times = np.array(track.times)
    assert len(times) > 20 and (np.diff(times) > 0).all() and times[-1] <= timeline.duration
    np.testing.assert_allclose(np.array(track.face).sum(axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(np.array(track.fused).sum(axis=1), 1.0, atol=1e-4)
    assert track.key_faces and max(track.key_faces) < len(times)
    assert len(timeline.voiced) >= 1 and len(timeline.speech_times) >= 2
    start, end = timeline.voiced[0][0], timeline.voiced[-1][1]
    assert ((timeline.speech_times > start) & (timeline.speech_times < end)).all()
    tolerance = Config().pipeline.fusion_tolerance_s
    near_speech = np.min(np.abs(times[:, None] - timeline.speech_times[None]), axis=1) <= tolerance
    assert {m for m, near in zip(track.fusion, near_speech, strict=True) if not near} == {"face_only"}
    assert {m for m, near in zip(track.fusion, near_speech, strict=True) if near} == {"decision"}  # no head given


def test_classify_draws_the_timeline_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the timeline needs the plots extra")
    out = tmp_path / "timeline.png"
    assert main(["classify", "--every-nth", "3", "--timeline", str(out), str(DEMO_CLIP)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000


def test_the_timeline_needs_one_video(tmp_path: Path) -> None:
    image = tmp_path / "face.jpg"
    image.write_bytes(b"x")
    assert main(["classify", "--timeline", str(tmp_path / "t.png"), str(image)]) == 2
    assert main(["classify", "--timeline", str(tmp_path / "t.png"), str(DEMO_CLIP), str(DEMO_CLIP)]) == 2
