"""YuNet face detection on real RAVDESS frames: one face, sane landmarks, errors for bad input."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config.schema import DetectorConfig
from edge.detectors.face import Face, FaceDetector
from edge.detectors.yunet_opencv import OpenCvYuNet
from edge.errors import InputError, ModelFileError
from edge.features.video import iter_video_frames
from edge.models import DETECTOR_MODEL
from edge.models.loading import create_detector


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return create_detector()


@pytest.fixture(scope="module")
def frames(av_clip: Path) -> list[np.ndarray]:
    """Every 10th frame of the committed actor-05 clip (1280x720 BGR)."""
    return [frame.image for frame in iter_video_frames(av_clip, every_nth=10)]


def _inside(points: np.ndarray, box: np.ndarray) -> bool:
    x, y, w, h = box
    return bool(
        np.all((points[:, 0] >= x) & (points[:, 0] <= x + w) & (points[:, 1] >= y) & (points[:, 1] <= y + h))
    )


def test_default_model_and_license_ship_with_the_package() -> None:
    assert DETECTOR_MODEL.is_file()
    assert "Apache License" in (DETECTOR_MODEL.parent / "LICENSE.yunet").read_text()


def test_one_face_per_sampled_frame(detector: FaceDetector, frames: list[np.ndarray]) -> None:
    assert len(frames) == 10
    for image in frames:
        faces = detector.detect(image)
        assert len(faces) == 1
        face = faces[0]
        assert face.score > 0.9
        assert face.box.dtype == np.float32 and face.box.shape == (4,)
        assert face.landmarks.dtype == np.float32 and face.landmarks.shape == (5, 2)
        assert _inside(face.landmarks, face.box)
        # The face fills a plausible part of the 1280x720 frame (actor 05 is filmed close up).
        assert 150 < face.box[2] < 600 and 150 < face.box[3] < 700


def test_landmark_order_is_yunets(detector: FaceDetector, frames: list[np.ndarray]) -> None:
    """Right eye, left eye, nose, right mouth corner, left mouth corner: the subject's right has smaller x."""
    right_eye, left_eye, nose, right_mouth, left_mouth = detector.detect(frames[0])[0].landmarks
    assert right_eye[0] < nose[0] < left_eye[0]
    assert right_mouth[0] < nose[0] < left_mouth[0]
    assert max(right_eye[1], left_eye[1]) < nose[1] < min(right_mouth[1], left_mouth[1])


def test_downsized_detection_maps_back_to_frame_pixels(
    detector: FaceDetector, frames: list[np.ndarray]
) -> None:
    """A 1280x720 frame is detected at 640x360; the result must be the small frame's, scaled by 2."""
    image = frames[3]
    small_image = cv2.resize(image, (640, 360), interpolation=cv2.INTER_AREA)
    big = detector.detect(image)[0]
    small = detector.detect(small_image)[0]
    np.testing.assert_allclose(big.box, small.box * 2, rtol=1e-5)
    np.testing.assert_allclose(big.landmarks, small.landmarks * 2, rtol=1e-5)
    assert big.score == pytest.approx(small.score)


def test_full_resolution_detection_agrees(frames: list[np.ndarray]) -> None:
    image = frames[3]
    small = create_detector(DetectorConfig(max_side=640)).detect(image)[0]
    full = create_detector(DetectorConfig(max_side=1280)).detect(image)[0]
    assert np.abs(small.landmarks - full.landmarks).max() < 0.05 * float(full.box[2])


def test_gray_frame_gives_the_same_face(detector: FaceDetector, frames: list[np.ndarray]) -> None:
    image = frames[5]
    colour = detector.detect(image)[0]
    gray = detector.detect(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    assert len(gray) == 1
    assert np.abs(gray[0].landmarks - colour.landmarks).max() < 0.05 * float(colour.box[2])


def test_two_faces_sorted_by_score(detector: FaceDetector, frames: list[np.ndarray]) -> None:
    image = frames[0]
    faint = (image.astype(np.float32) * 0.35 + 60).astype(np.uint8)
    faces = detector.detect(np.hstack([faint, image]))
    assert len(faces) == 2
    assert faces[0].score >= faces[1].score
    # The untouched copy (right half) should score at least as well as the washed-out one.
    assert faces[0].box[0] > image.shape[1]


def test_no_face_in_a_blank_frame(detector: FaceDetector) -> None:
    assert detector.detect(np.full((480, 640, 3), 128, np.uint8)) == []


def test_face_arrays_are_read_only(detector: FaceDetector, frames: list[np.ndarray]) -> None:
    face: Face = detector.detect(frames[1])[0]
    with pytest.raises(ValueError):
        face.landmarks[0, 0] = 0.0
    with pytest.raises(ValueError):
        face.box[0] = 0.0


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((48, 48, 3), np.float32),
        np.zeros((48, 48, 4), np.uint8),
        np.zeros((48,), np.uint8),
        np.zeros((0, 48, 3), np.uint8),
        [[0, 0], [0, 0]],
    ],
    ids=["float", "bgra", "1-d", "empty", "list"],
)
def test_bad_frames_raise_input_error(detector: FaceDetector, frame: np.ndarray) -> None:
    with pytest.raises(InputError, match="frame"):
        detector.detect(frame)


def test_missing_model_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.onnx"
    with pytest.raises(ModelFileError, match="nothing.onnx"):
        create_detector(DetectorConfig(model=missing))


def test_corrupt_model_file_names_the_path(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"this is not an onnx model")
    with pytest.raises(ModelFileError, match="corrupt.onnx"):
        create_detector(DetectorConfig(model=corrupt))


def test_too_small_max_side_is_refused() -> None:
    with pytest.raises(ValueError, match="max_side: must be at least 32"):
        DetectorConfig(max_side=8)
    with pytest.raises(InputError, match="max_side"):
        OpenCvYuNet(DETECTOR_MODEL, 0.7, 0.3, 50, max_side=8)


@pytest.mark.shared_data
def test_one_face_in_every_shared_clip(ravdess_av_dir: Path, detector: FaceDetector) -> None:
    clips = sorted(ravdess_av_dir.glob("Actor_05/*.mp4"))
    assert len(clips) == 14
    for clip in clips:
        # Frame 45 of about 95: mid-sentence, where the expression is strongest.
        frame = next(islice(iter_video_frames(clip, every_nth=45), 1, None))
        faces = detector.detect(frame.image)
        assert len(faces) == 1, clip.name
        assert faces[0].score > 0.9, clip.name
        assert _inside(faces[0].landmarks, faces[0].box), clip.name


def test_creating_the_detector_prints_no_opencv_warning(capfd: pytest.CaptureFixture[str]) -> None:
    level = cv2.utils.logging.getLogLevel()
    create_detector()
    assert "WARN" not in capfd.readouterr().err
    assert cv2.utils.logging.getLogLevel() == level   # OpenCV's log level is restored
