"""The two YuNet detectors agree on real frames: OpenCV's FaceDetectorYN and the numpy one on ONNX Runtime."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED_DATA

from edge.config.schema import DetectorConfig, ModelsConfig
from edge.detectors.yunet import YuNet, nms
from edge.detectors.yunet_opencv import OpenCvYuNet
from edge.errors import InputError
from edge.features.video import iter_video_frames
from edge.models import DETECTOR_MODEL, FACE_MODEL
from edge.models.loading import create_detector
from edge.runtime.onnxruntime_backend import OnnxRuntimeBackend
from edge.sidecar import SidecarMismatchError, file_sha256, read_sidecar, write_sidecar

DYNAMIC = SHARED_DATA / "face_detector_yunet" / "onnx" / "yunet_s_dynamic.onnx"


@pytest.fixture(scope="module")
def frames(av_clip: Path) -> list[np.ndarray]:
    return [frame.image for frame in iter_video_frames(av_clip, 15)]


def worst_difference(a: list, b: list) -> float:
    assert len(a) == len(b)
    return max((max(float(np.abs(x.box - y.box).max()), float(np.abs(x.landmarks - y.landmarks).max()))
                for x, y in zip(a, b, strict=True)), default=0.0)


def test_the_factory_builds_the_configured_implementation() -> None:
    assert isinstance(create_detector(DetectorConfig(implementation="opencv")), OpenCvYuNet)
    runtime = create_detector(DetectorConfig(implementation="runtime"), ModelsConfig(backend="onnxruntime"))
    assert isinstance(runtime, YuNet) and runtime.fixed == (640, 640)


def test_on_a_square_frame_both_implementations_give_the_same_faces(frames: list[np.ndarray]) -> None:
    # a 640x640 frame needs no padding in either: the same graph on the same pixels
    square = [cv2.resize(frame[:, 280:1000], (640, 640), interpolation=cv2.INTER_AREA) for frame in frames]
    opencv, runtime = create_detector(DetectorConfig(implementation="opencv")), create_detector(
        DetectorConfig(implementation="runtime"))
    for image in square:
        a, b = opencv.detect(image), runtime.detect(image)
        assert len(a) == 1 and worst_difference(a, b) < 1e-2
        assert abs(a[0].score - b[0].score) < 1e-4


def test_on_widescreen_frames_the_fixed_graph_is_within_a_few_pixels(frames: list[np.ndarray]) -> None:
    # 1280x720 is shrunk to 640x360: OpenCV pads it to 640x384, the fixed graph takes 640x640, so the
    # network sees more zero rows below the image; boxes move by less than 1 % of the face size
    opencv, runtime = create_detector(DetectorConfig(implementation="opencv")), create_detector(
        DetectorConfig(implementation="runtime"))
    for image in frames:
        a, b = opencv.detect(image), runtime.detect(image)
        assert len(a) == 1 and worst_difference(a, b) < 0.015 * float(a[0].box[2])


@pytest.mark.skipif(not DYNAMIC.is_file(), reason="../shared/data has no yunet_s_dynamic.onnx")
def test_with_a_dynamic_graph_the_numpy_detector_matches_opencv_exactly(frames: list[np.ndarray],
                                                                        tmp_path: Path) -> None:
    model = tmp_path / DYNAMIC.name
    shutil.copy(DYNAMIC, model)
    write_sidecar(model, dataclasses.replace(read_sidecar(DETECTOR_MODEL), name=model.stem,
                                             input_shape=(None, 3, None, None), sha256=file_sha256(model)))
    runtime = YuNet(OnnxRuntimeBackend(model), 0.7, 0.3, 50, 640)
    opencv = create_detector(DetectorConfig(implementation="opencv"))
    for image in frames:   # padded to 640x384 like OpenCV does
        assert worst_difference(opencv.detect(image), runtime.detect(image)) < 1e-2


def test_two_faces_and_a_blank_frame(frames: list[np.ndarray]) -> None:
    pair = np.concatenate([frames[0], frames[-1]], axis=1)
    for implementation in ("opencv", "runtime"):
        detector = create_detector(DetectorConfig(implementation=implementation))
        faces = detector.detect(pair)
        assert len(faces) == 2 and faces[0].score >= faces[1].score
        assert detector.detect(np.zeros((480, 640, 3), np.uint8)) == []


def test_nms_keeps_the_best_of_overlapping_boxes_and_honours_top_k() -> None:
    boxes = np.array([[0, 0, 100, 100], [5, 5, 100, 100], [300, 300, 50, 50]], dtype=np.float32)
    scores = np.array([0.8, 0.9, 0.75], dtype=np.float32)
    assert nms(boxes, scores, 0.7, 0.3, 50) == [1, 2]
    assert nms(boxes, scores, 0.7, 0.3, 1) == [1]
    assert nms(boxes, scores, 0.85, 0.3, 50) == [1]


def test_a_max_side_beyond_the_graph_and_a_model_that_is_not_a_detector_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="max_side 1280 must be in 32..640"):
        create_detector(DetectorConfig(implementation="runtime", max_side=1280))
    with pytest.raises(SidecarMismatchError, match="not a face detector"):
        create_detector(DetectorConfig(implementation="runtime", model=FACE_MODEL))
