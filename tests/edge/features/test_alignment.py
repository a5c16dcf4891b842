"""Five-point alignment: the template, the similarity fit, and aligned crops of real frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.detectors.face import Face, FaceDetector
from edge.errors import InputError
from edge.features.alignment import AlignParams, align_face, alignment_matrix, template
from edge.features.video import iter_video_frames
from edge.models.loading import create_detector


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return create_detector()


@pytest.fixture(scope="module")
def detected(av_clip: Path, detector: FaceDetector) -> list[tuple[np.ndarray, Face]]:
    """Every 10th frame of the committed actor-05 clip with its one detected face."""
    pairs = []
    for frame in iter_video_frames(av_clip, every_nth=10):
        (face,) = detector.detect(frame.image)
        pairs.append((frame.image, face))
    return pairs


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


@pytest.mark.parametrize("size", [47, 65, 0])
def test_crop_size_outside_48_to_64_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match="crop_size"):
        AlignParams(crop_size=size)


def test_params_round_trip_through_dict() -> None:
    params = AlignParams(crop_size=64, face_scale=1.0, face_center_y=0.6)
    assert AlignParams(**params.to_dict()) == params
    assert AlignParams(crop_size=48).to_dict()["crop_size"] == 48


def test_default_template_frames_faces_like_fer2013() -> None:
    """Pins the measured FER2013 framing (median YuNet landmarks on 589 train images)."""
    fer_median = np.array([[0.300, 0.382], [0.679, 0.383], [0.492, 0.592], [0.347, 0.755], [0.645, 0.752]])
    points = template(AlignParams()) / 48
    assert np.sqrt(np.mean(np.sum((points - fer_median) ** 2, axis=1))) < 0.03
    # Symmetric about the vertical centre line, eyes above nose above mouth.
    assert points[0, 0] + points[1, 0] == pytest.approx(1.0, abs=0.01)
    assert points[:2, 1].max() < points[2, 1] < points[3:, 1].min()


def test_template_scales_with_crop_size_and_face_scale() -> None:
    small, big = template(AlignParams(crop_size=48)), template(AlignParams(crop_size=64))
    np.testing.assert_allclose(big, small * 64 / 48)
    tight = template(AlignParams(face_scale=1.0))
    loose = template(AlignParams(face_scale=0.8))
    np.testing.assert_allclose(tight.mean(axis=0), loose.mean(axis=0))
    assert np.linalg.norm(loose[1] - loose[0]) == pytest.approx(0.8 * np.linalg.norm(tight[1] - tight[0]))


def test_alignment_matrix_inverts_a_known_similarity() -> None:
    params = AlignParams()
    angle, scale, shift = np.deg2rad(17.0), 6.5, np.array([400.0, 210.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = template(params) @ rotation.T + shift
    matrix = alignment_matrix(landmarks, params)
    np.testing.assert_allclose(_apply(matrix, landmarks), template(params), atol=1e-9)
    # A similarity: [[a, -b], [b, a]].
    assert matrix[0, 0] == pytest.approx(matrix[1, 1]) and matrix[0, 1] == pytest.approx(-matrix[1, 0])


@pytest.mark.parametrize("crop_size", [48, 64])
def test_real_landmarks_land_on_the_template(detected: list[tuple[np.ndarray, Face]], crop_size: int) -> None:
    params = AlignParams(crop_size=crop_size)
    tolerance = crop_size / 48
    for _, face in detected:
        error = np.linalg.norm(
            _apply(alignment_matrix(face.landmarks, params), face.landmarks) - template(params), axis=1
        )
        assert error[:2].max() < 2.0 * tolerance  # eyes
        assert error[2:].max() < 3.0 * tolerance  # nose and mouth corners


@pytest.mark.parametrize("crop_size", [48, 56, 64])
def test_crop_is_square_gray_uint8(detected: list[tuple[np.ndarray, Face]], crop_size: int) -> None:
    image, face = detected[0]
    crop = align_face(image, face.landmarks, AlignParams(crop_size=crop_size))
    assert crop.shape == (crop_size, crop_size) and crop.dtype == np.uint8
    assert crop.std() > 20  # a face, not a flat patch


def test_gray_and_bgr_frames_give_the_same_crop(detected: list[tuple[np.ndarray, Face]]) -> None:
    image, face = detected[4]
    params = AlignParams()
    from_bgr = align_face(image, face.landmarks, params).astype(int)
    from_gray = align_face(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), face.landmarks, params).astype(int)
    assert np.abs(from_bgr - from_gray).max() <= 2


def test_alignment_undoes_in_plane_rotation(
    detected: list[tuple[np.ndarray, Face]], detector: FaceDetector
) -> None:
    image, face = detected[2]
    params = AlignParams()
    upright = align_face(image, face.landmarks, params).astype(np.float32)
    height, width = image.shape[:2]
    rotated = cv2.warpAffine(
        image, cv2.getRotationMatrix2D((width / 2, height / 2), 15, 1.0), (width, height)
    )
    (tilted,) = detector.detect(rotated)
    aligned = align_face(rotated, tilted.landmarks, params).astype(np.float32)
    x, y, w, h = tilted.box.astype(int)
    naive = cv2.resize(cv2.cvtColor(rotated[y : y + h, x : x + w], cv2.COLOR_BGR2GRAY), upright.shape[::-1])
    assert np.abs(aligned - upright).mean() < 10
    assert np.abs(naive.astype(np.float32) - upright).mean() > 3 * np.abs(aligned - upright).mean()


@pytest.mark.parametrize(
    "landmarks",
    [np.zeros((4, 2)), np.full((5, 2), 10.0), np.array([[np.nan, 0]] * 5)],
    ids=["wrong-shape", "one-point", "nan"],
)
def test_bad_landmarks_raise_input_error(landmarks: np.ndarray) -> None:
    with pytest.raises(InputError, match="landmarks"):
        alignment_matrix(landmarks, AlignParams())


def test_bad_frame_raises_input_error(detected: list[tuple[np.ndarray, Face]]) -> None:
    _, face = detected[0]
    with pytest.raises(InputError, match="frame"):
        align_face(np.zeros((720, 1280, 3), np.float64), face.landmarks, AlignParams())
