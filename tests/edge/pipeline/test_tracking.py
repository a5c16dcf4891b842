"""The IoU tracker: stable ids, min_hits before a track appears, max_age before it is lost, several faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.config.schema import PipelineConfig
from edge.detectors.face import Face
from edge.features.video import iter_video_frames
from edge.models.loading import create_detector
from edge.pipeline.tracking import IouTracker, iou_matrix


def face(x: float, y: float, w: float = 100, h: float = 120) -> Face:
    return Face(box=np.array([x, y, w, h], np.float32), score=0.9, landmarks=np.zeros((5, 2), np.float32))


def test_iou_of_known_boxes() -> None:
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5], [0, 0, 0, 0]])
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 50 / 150, 0.0, 0.0]])


def test_a_track_appears_after_min_hits_and_keeps_its_id_while_moving() -> None:
    tracker = IouTracker(PipelineConfig(track_iou=0.3, track_max_age=2, track_min_hits=2))
    first = tracker.update([face(100, 100)], t=0.0)
    assert first.appeared == [] and first.matched == [] and tracker.tracks == []
    second = tracker.update([face(110, 104)], t=0.1)
    assert [t.track_id for t in second.appeared] == [1]
    for k in range(2, 20):
        update = tracker.update([face(100 + 10 * k, 100 + 4 * k)], t=k / 10)
        assert [t.track_id for t in update.matched] == [1] and not update.appeared and not update.lost


def test_a_missed_track_survives_max_age_rounds_then_is_lost_once() -> None:
    tracker = IouTracker(PipelineConfig(track_max_age=2, track_min_hits=1))
    assert [t.track_id for t in tracker.update([face(0, 0)], 0.0).appeared] == [1]
    assert tracker.update([], 0.1).lost == []
    assert tracker.update([], 0.2).lost == []
    back = tracker.update([face(5, 0)], 0.3)  # seen again within max_age: same id
    assert [t.track_id for t in back.matched] == [1]
    tracker.update([], 0.4)
    tracker.update([], 0.5)
    lost = tracker.update([], 0.6)
    assert [t.track_id for t in lost.lost] == [1] and tracker.tracks == []
    assert tracker.update([], 0.7).lost == []


def test_tentative_tracks_vanish_quietly_and_ids_are_never_reused() -> None:
    tracker = IouTracker(PipelineConfig(track_min_hits=3))
    tracker.update([face(0, 0)], 0.0)
    assert tracker.update([], 0.1).lost == []  # never confirmed: no track_lost
    tracker.update([face(500, 0)], 0.2)
    tracker.update([face(500, 0)], 0.3)
    appeared = tracker.update([face(500, 0)], 0.4).appeared
    assert [t.track_id for t in appeared] == [2]


def test_two_faces_moving_towards_each_other_keep_their_ids() -> None:
    """Hungarian matching on IoU: each face keeps its id until they overlap (at k = 6 they are 40 px apart)."""
    tracker = IouTracker(PipelineConfig(track_min_hits=1))
    tracker.update([face(0, 0), face(400, 0)], 0.0)
    for k in range(1, 7):
        # Listed in the opposite order each round, so ids must come from overlap, not position in the list.
        update = tracker.update([face(400 - 30 * k, 0), face(30 * k, 0)], k / 10)
        by_id = {t.track_id: float(t.face.box[0]) for t in update.matched}
        assert by_id == {1: 30 * k, 2: 400 - 30 * k}


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="track_iou"):
        IouTracker(PipelineConfig(track_iou=0.0))
    with pytest.raises(ValueError, match="track_min_hits"):
        IouTracker(PipelineConfig(track_min_hits=0))


def test_the_face_in_the_real_clip_is_one_stable_track(av_clip) -> None:
    detector = create_detector()
    tracker = IouTracker(PipelineConfig(track_min_hits=2, track_max_age=2))
    ids: set[int] = set()
    for k, frame in enumerate(iter_video_frames(av_clip, every_nth=6)):
        update = tracker.update(detector.detect(frame.image), k * 0.2)
        ids.update(t.track_id for t in update.matched)
        assert not update.lost
    assert ids == {1} and [t.track_id for t in tracker.tracks] == [1]


def test_at_capacity_tracked_faces_keep_their_ids_and_new_ones_wait() -> None:
    tracker = IouTracker(PipelineConfig(track_min_hits=1, max_faces=4))
    rng = np.random.default_rng(0)
    ids_seen: set[int] = set()
    for round_index in range(60):   # 8 static faces of jittering sizes: which 4 are "largest" changes each round
        faces = [face(200.0 * k, 50, 100 + float(rng.normal(0, 3)), 120) for k in range(8)]
        update = tracker.update(faces, t=round_index / 10)
        ids_seen |= {track.track_id for track in tracker.tracks}
        assert len(tracker.tracks) <= 4 and update.dropped == 4
    assert ids_seen == {1, 2, 3, 4}   # no id switches
    first = tracker.tracks[0]
    gone = int(first.face.box[0] // 200)
    for round_index in range(5):      # a tracked face leaves: its place frees once the track is lost
        update = tracker.update([face(200.0 * k, 50) for k in range(8) if k != gone], t=10 + round_index)
    assert first.track_id not in {t.track_id for t in tracker.tracks} and len(tracker.tracks) == 4
    with pytest.raises(ValueError, match="max_faces"):
        IouTracker(PipelineConfig(max_faces=0))


def test_a_crowd_of_static_faces_keeps_max_faces_tracks_through_the_daemon(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    import av
    import cv2

    from edge.demo import DEMO_CLIP

    clip = tmp_path / "eight.mp4"   # the demo take, shrunk and tiled 4 x 2: eight faces moving together
    with av.open(str(clip), mode="w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 1280, 360, "yuv420p"
        for frame in iter_video_frames(DEMO_CLIP, 1):
            small = cv2.resize(frame.image, (320, 180), interpolation=cv2.INTER_AREA)
            tiled = np.vstack([np.hstack([small] * 4)] * 2)
            for packet in stream.encode(av.VideoFrame.from_ndarray(tiled, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert len(create_detector().detect(next(iter_video_frames(clip, 1)).image)) == 8
    result = subprocess.run([sys.executable, "-m", "edge.app.cli", "run", "--no-realtime", "--format", "jsonl",
                             "--source", str(clip)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    payloads = [json.loads(line) for line in result.stdout.splitlines()]
    events = [p for p in payloads if p["schema"].startswith("emotion-edge/events/")]
    states = [p for p in payloads if p["schema"].startswith("emotion-edge/state/")]
    stats = [p for p in payloads if p["schema"].startswith("emotion-edge/stats/")][-1]
    assert {e["track_id"] for e in events} == {1, 2, 3, 4}   # the default max_faces, and no id switches
    assert max(len(s["tracks"]) for s in states) == 4
    assert sum(e["event"] == "track_appeared" for e in events) == 4
    assert stats["faces_dropped"] > 0
