"""Five-point similarity alignment of a detected face to a gray crop framed like FER2013."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from edge.errors import InputError
from edge.features.frames import check_frame

# The standard 5-point ArcFace template for a 112x112 crop, in YuNet's landmark order (right eye,
# left eye, nose tip, right mouth corner, left mouth corner), normalised to [0, 1].
ARCFACE_TEMPLATE = (
    np.array(
        [
            [38.2946, 51.6963],
            [73.5318, 51.5014],
            [56.0252, 71.7366],
            [41.5493, 92.3655],
            [70.7299, 92.2041],
        ],
        dtype=np.float64,
    )
    / 112.0
)

MIN_CROP_SIZE = 48
MAX_CROP_SIZE = 64

# Defaults measured on FER2013, which the face CNN is trained on, so that aligned crops are framed
# like its images. YuNet ran on 600 random FER2013 train images (random.Random(0) shuffle of the
# sorted file list) upscaled 48 -> 192 px with INTER_CUBIC; 589 gave exactly one face. The median
# landmarks, normalised to [0, 1], were: right eye (0.300, 0.382), left eye (0.679, 0.383), nose
# (0.492, 0.592), mouth corners (0.347, 0.755), (0.645, 0.752). The least-squares similarity from
# the ArcFace template to them has scale 1.083, rotation -0.3 degrees, and moves the landmark
# centroid from (0.500, 0.642) to (0.493, 0.573): FER2013 faces fill more of the image and sit
# higher than ArcFace crops. Scaling the ArcFace template about the crop centre alone fits no
# better than 0.070 rms (k = 0.90), hence the separate vertical placement.
FER2013_FACE_SCALE = 1.08
FER2013_FACE_CENTER_Y = 0.57


@dataclass(frozen=True)
class AlignParams:
    """Where the aligned face sits in the crop.

    crop_size: side of the square gray crop in pixels (48..64).
    face_scale: size of the face relative to the ArcFace template (1.0 = ArcFace's framing).
    face_center_y: height of the landmarks' centroid as a fraction of the crop (0 = top); the
        centroid is centred horizontally.
    """

    crop_size: int = MIN_CROP_SIZE
    face_scale: float = FER2013_FACE_SCALE
    face_center_y: float = FER2013_FACE_CENTER_Y

    def __post_init__(self) -> None:
        if not MIN_CROP_SIZE <= self.crop_size <= MAX_CROP_SIZE:
            raise InputError(
                f"crop_size must be in {MIN_CROP_SIZE}..{MAX_CROP_SIZE} pixels, got {self.crop_size}"
            )
        if not 0.25 <= self.face_scale <= 2.0:
            raise InputError(f"face_scale must be in 0.25..2.0, got {self.face_scale}")
        if not 0.0 < self.face_center_y < 1.0:
            raise InputError(f"face_center_y must be inside (0, 1), got {self.face_center_y}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def template(params: AlignParams) -> np.ndarray:
    """The five canonical landmark positions (5, 2) in crop pixels."""
    centred = ARCFACE_TEMPLATE - ARCFACE_TEMPLATE.mean(axis=0)
    centre = np.array([0.5, params.face_center_y])
    return (centred * params.face_scale + centre) * params.crop_size


def alignment_matrix(landmarks: np.ndarray, params: AlignParams) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, shift) that maps landmarks onto the template.

    Least squares over all five points (Umeyama's closed form, written with complex numbers:
    template ~= a * landmark + b with complex a, b).
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (5, 2) or not np.all(np.isfinite(points)):
        raise InputError(f"landmarks must be a finite (5, 2) array, got shape {points.shape}")
    src = points[:, 0] + 1j * points[:, 1]
    target = template(params)
    dst = target[:, 0] + 1j * target[:, 1]
    src_centred = src - src.mean()
    spread = float(np.sum(np.abs(src_centred) ** 2))
    if spread < 1e-6:
        raise InputError("landmarks must not all lie on one point")
    a = np.sum(np.conj(src_centred) * (dst - dst.mean())) / spread
    b = dst.mean() - a * src.mean()
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def align_face(frame: np.ndarray, landmarks: np.ndarray, params: AlignParams) -> np.ndarray:
    """The aligned face as a (crop_size, crop_size) uint8 gray crop from a BGR or gray frame."""
    check_frame(frame)
    size = params.crop_size
    crop = cv2.warpAffine(
        frame,
        alignment_matrix(landmarks, params),
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    # Warping first and converting the small crop is cheaper than converting the whole frame.
    return crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
