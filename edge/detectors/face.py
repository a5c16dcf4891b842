"""The face-detector interface every detector implements, the ``Face`` it returns, and the frame check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from edge.features.frames import check_frame

# YuNet's landmark order, which every detector returns. "Right" is the subject's right, which lies on
# the image's left (smaller x) for a face looking at the camera.
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


def make_face(box: np.ndarray, score: float, landmarks: np.ndarray) -> Face:
    """A ``Face`` holding read-only float32 copies of ``box`` (4,) and ``landmarks`` (5, 2)."""
    box = np.array(box, dtype=np.float32).reshape(4)
    landmarks = np.array(landmarks, dtype=np.float32).reshape(5, 2)
    box.setflags(write=False)
    landmarks.setflags(write=False)
    return Face(box=box, score=float(score), landmarks=landmarks)


class FaceDetector(Protocol):
    """Faces in a frame: ``detect`` takes a BGR or gray uint8 frame and returns them highest score first.

    An instance is used by one thread at a time.
    """

    def detect(self, frame: np.ndarray) -> list[Face]: ...


def shrunk_bgr(frame: np.ndarray, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    """(BGR image whose longer side is at most ``max_side``, (2,) float32 factor back to frame pixels).

    The frame is checked first; gray frames are expanded to BGR; larger frames are shrunk with
    area interpolation (a detector's cost grows with the pixel count).
    """
    check_frame(frame)
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    height, width = frame.shape[:2]
    shrink = min(1.0, max_side / max(height, width))
    size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
    if size != (width, height):
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    return frame, np.array([width / size[0], height / size[1]], dtype=np.float32)
