"""YuNet through OpenCV (``cv2.FaceDetectorYN``): the detector OpenCV runs on the CPU, any frame size."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from edge.detectors.face import Face, make_face, shrunk_bgr
from edge.errors import InputError, ModelFileError
from edge.steps import step


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


class OpenCvYuNet:
    """YuNet face detector on ``cv2.FaceDetectorYN`` for frames of any size.

    Frames whose longer side exceeds ``max_side`` are shrunk before detection and the results are
    mapped back to the frame's own pixels.
    """

    def __init__(self, model_path: str | Path, score_threshold: float, nms_threshold: float, top_k: int,
                 max_side: int) -> None:
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
        with step("resize for detection"):
            image, to_frame = shrunk_bgr(frame, self.max_side)
        size = (image.shape[1], image.shape[0])
        if size != self._input_size:
            self._detector.setInputSize(size)
            self._input_size = size
        with step("detect (YuNet, OpenCV)"):
            _, rows = self._detector.detect(image)
        if rows is None:
            return []
        return [make_face((row[:4].reshape(2, 2) * to_frame).reshape(4), float(row[14]),
                          row[4:14].reshape(5, 2) * to_frame)
                for row in rows[np.argsort(-rows[:, 14], kind="stable")]]
