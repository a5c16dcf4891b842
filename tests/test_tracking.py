"""The IoU tracker: stable ids, min_hits before a track appears, max_age before it is lost, several faces."""

from __future__ import annotations

import numpy as np
import pytest

from edge.features.faces import Face, FaceDetector
from edge.features.video import iter_video_frames
from edge.tracking import IouTracker, iou_matrix


def face(x: float, y: float, w: float = 100, h: float = 120) -> Face:
    return Face(box=np.array([x, y, w, h], np.float32), score=0.9, landmarks=np.zeros((5, 2), np.float32))


def test_iou_of_known_boxes() -> None:
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5], [0, 0, 0, 0]])
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 50 / 150, 0.0, 0.0]])


def test_a_track_appears_after_min_hits_and_keeps_its_id_while_moving() -> None:
    tracker = IouTracker(iou_threshold=0.3, max_age=2, min_hits=2)
    first = tracker.update([face(100, 100)], t=0.0)
    assert first.appeared == [] and first.matched == [] and tracker.tracks == []
    second = tracker.update([face(110, 104)], t=0.1)
    assert [t.track_id for t in second.appeared] == [1]
    for k in range(2, 20):
        update = tracker.update([face(100 + 10 * k, 100 + 4 * k)], t=k / 10)
        assert [t.track_id for t in update.matched] == [1] and not update.appeared and not update.lost


def test_a_missed_track_survives_max_age_rounds_then_is_lost_once() -> None:
    tracker = IouTracker(max_age=2, min_hits=1)
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
    tracker = IouTracker(min_hits=3)
    tracker.update([face(0, 0)], 0.0)
    assert tracker.update([], 0.1).lost == []  # never confirmed: no track_lost
    tracker.update([face(500, 0)], 0.2)
    tracker.update([face(500, 0)], 0.3)
    appeared = tracker.update([face(500, 0)], 0.4).appeared
    assert [t.track_id for t in appeared] == [2]


def test_two_faces_moving_towards_each_other_keep_their_ids() -> None:
    """Hungarian matching on IoU: each face keeps its id until they overlap (at k = 6 they are 40 px apart)."""
    tracker = IouTracker(min_hits=1)
    tracker.update([face(0, 0), face(400, 0)], 0.0)
    for k in range(1, 7):
        # Listed in the opposite order each round, so ids must come from overlap, not position in the list.
        update = tracker.update([face(400 - 30 * k, 0), face(30 * k, 0)], k / 10)
        by_id = {t.track_id: float(t.face.box[0]) for t in update.matched}
        assert by_id == {1: 30 * k, 2: 400 - 30 * k}


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="iou_threshold"):
        IouTracker(iou_threshold=0.0)
    with pytest.raises(ValueError, match="min_hits"):
        IouTracker(min_hits=0)


def test_the_face_in_the_real_clip_is_one_stable_track(av_clip) -> None:
    detector = FaceDetector()
    tracker = IouTracker(min_hits=2, max_age=2)
    ids: set[int] = set()
    for k, frame in enumerate(iter_video_frames(av_clip, every_nth=6)):
        update = tracker.update(detector.detect(frame.image), k * 0.2)
        ids.update(t.track_id for t in update.matched)
        assert not update.lost
    assert ids == {1} and [t.track_id for t in tracker.tracks] == [1]
