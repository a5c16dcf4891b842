"""Face detection with YuNet (cv2.FaceDetectorYN): a box, a score and five landmarks per face."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.errors import InputError, ModelFileError

DEFAULT_DETECTOR = Path(__file__).resolve().parents[1] / "models" / "face_detection_yunet_2023mar.onnx"

# YuNet's landmark order. "Right" is the subject's right, which lies on the image's left (smaller x)
# for a face looking at the camera.
LANDMARK_NAMES = ("right_eye", "left_eye", "nose_tip", "right_mouth_corner", "left_mouth_corner")


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face in the pixel coordinates of the frame it was found in.

    box is (x, y, w, h) float32; landmarks is (5, 2) float32 (x, y) in LANDMARK_NAMES order.
    Both arrays are read-only.
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray


def check_frame(frame: np.ndarray) -> None:
    """Raise InputError unless frame is an HxW (gray) or HxWx3 (BGR) uint8 image with pixels."""
    if not isinstance(frame, np.ndarray):
        raise InputError(f"a frame must be a numpy array, got {type(frame).__name__}")
    shape_ok = frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)
    if not shape_ok or frame.dtype != np.uint8 or frame.size == 0:
        raise InputError(
            f"a frame must be an HxW or HxWx3 uint8 image, got shape {frame.shape} dtype {frame.dtype}"
        )


@contextmanager
def _opencv_warnings_off() -> Iterator[None]:
    """OpenCV's own warnings silenced inside (where its Python bindings expose the log level).

    OpenCV 5's new DNN engine warns on stderr, when YuNet is created, that it ignores the default
    (CPU) target it is handed; nothing is wrong, so creation runs with warnings off.
    """
    logging_api = getattr(cv2.utils, "logging", None)
    if logging_api is None:
        yield
        return
    level = logging_api.getLogLevel()
    logging_api.setLogLevel(logging_api.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        logging_api.setLogLevel(level)


class FaceDetector:
    """YuNet face detector for frames of any size.

    Frames whose longer side exceeds max_side are shrunk before detection (the network's cost grows
    with the pixel count) and the results are mapped back to the frame's own pixels. One instance
    is not safe to share between threads.
    """

    def __init__(
        self,
        model_path: str | Path = DEFAULT_DETECTOR,
        score_threshold: float = 0.7,
        nms_threshold: float = 0.3,
        top_k: int = 50,
        max_side: int = 640,
    ) -> None:
        if max_side < 32:
            raise InputError(f"max_side must be at least 32 pixels, got {max_side}")
        self.model_path = Path(model_path)
        self.max_side = max_side
        if not self.model_path.is_file():
            raise ModelFileError(f"{self.model_path}: face detector model file not found")
        self._input_size = (max_side, max_side)
        try:
            with _opencv_warnings_off():
                self._detector = cv2.FaceDetectorYN.create(
                    str(self.model_path), "", self._input_size, score_threshold, nms_threshold, top_k
                )
        except cv2.error as exc:
            raise ModelFileError(f"{self.model_path}: not a usable YuNet ONNX model ({exc})") from exc

    def detect(self, frame: np.ndarray) -> list[Face]:
        """Faces in a BGR or gray uint8 frame, highest score first."""
        check_frame(frame)
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        height, width = frame.shape[:2]
        shrink = min(1.0, self.max_side / max(height, width))
        size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
        if size != (width, height):
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        if size != self._input_size:
            self._detector.setInputSize(size)
            self._input_size = size
        _, rows = self._detector.detect(frame)
        if rows is None:
            return []
        to_frame = np.array([width / size[0], height / size[1]], dtype=np.float32)
        faces = []
        for row in rows[np.argsort(-rows[:, 14], kind="stable")]:
            box = (row[:4].reshape(2, 2) * to_frame).reshape(4)
            landmarks = row[4:14].reshape(5, 2) * to_frame
            box.setflags(write=False)
            landmarks.setflags(write=False)
            faces.append(Face(box=box, score=float(row[14]), landmarks=landmarks))
        return faces
