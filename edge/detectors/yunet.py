"""YuNet on an inference backend of ``edge.runtime`` (ONNX Runtime, TensorRT), pre- and post-processing in numpy.

This is what ``cv2.FaceDetectorYN`` does around the same graph (OpenCV's ``face_detect.cpp``), so
the two agree (``tests/edge/detectors/test_yunet_parity.py``). The frame, shrunk to ``max_side``, goes
in as raw BGR values (no scaling), padded with zeros at the bottom and right to the graph's fixed
input size (or, for a graph with a dynamic input, to a multiple of 32, as OpenCV pads). Each of
the three heads (strides 8, 16, 32) gives per grid cell a class and an objectness score (the face
score is the square root of their product, each clipped to 0..1), a box (centre offset in cells,
log size in cells) and 5 landmarks (offsets in cells). Faces above the score threshold go through
OpenCV's NMS: candidates ranked by score, at most ``top_k`` kept before suppression, overlap
measured on boxes truncated to whole pixels, as OpenCV does. Running YuNet on the model backend
lets a Jetson run it through TensorRT like the other models.
"""

from __future__ import annotations

import numpy as np

from edge.detectors.face import Face, make_face, shrunk_bgr
from edge.errors import InputError
from edge.runtime.backend import Backend
from edge.sidecar import DETECTOR_KIND, SidecarMismatchError
from edge.steps import step

STRIDES = (8, 16, 32)


class YuNet:
    """YuNet's graph on ``model`` (a loaded backend) with the thresholds of ``[detector]``."""

    def __init__(self, model: Backend, score_threshold: float, nms_threshold: float, top_k: int,
                 max_side: int) -> None:
        sidecar = model.sidecar
        if sidecar.kind != DETECTOR_KIND:
            raise SidecarMismatchError(f"{model.artifact}: this is a {sidecar.kind} model, not a face detector")
        shape = sidecar.input_shape
        if len(shape) != 4 or shape[1] != 3:
            raise SidecarMismatchError(f"{model.artifact}: a YuNet graph takes a 1x3xHxW input, not {list(shape)}")
        # a fixed input size (OpenCV Zoo's 640x640 export) or, for a dynamic graph, the frame padded to 32
        self.fixed = (shape[2], shape[3]) if isinstance(shape[2], int) and isinstance(shape[3], int) else None
        largest = min(self.fixed) if self.fixed else None
        if max_side < 32 or (largest is not None and max_side > largest):
            raise InputError(f"detector.max_side {max_side} must be in 32..{largest or 'any'}"
                             + (f" (the graph's input is {self.fixed[0]}x{self.fixed[1]})" if self.fixed else ""))
        self.model, self.max_side = model, max_side
        self.score_threshold, self.nms_threshold, self.top_k = score_threshold, nms_threshold, top_k

    def detect(self, frame: np.ndarray) -> list[Face]:
        """Faces in a BGR or gray uint8 frame, highest score first."""
        with step("resize for detection"):
            image, to_frame = shrunk_bgr(frame, self.max_side)
            height, width = image.shape[:2]
            size = self.fixed or (-(-height // STRIDES[-1]) * STRIDES[-1], -(-width // STRIDES[-1]) * STRIDES[-1])
            blob = np.zeros((1, 3, *size), dtype=np.float32)
            blob[0, :, :height, :width] = image.transpose(2, 0, 1)
        with step("detect (YuNet, runtime)"):
            outputs = self.model.run(blob)
        with step("decode detections"):
            boxes, scores, landmarks = self._decode(outputs, size[1])
            keep = nms(boxes, scores, self.score_threshold, self.nms_threshold, self.top_k)
        return [make_face((boxes[i].reshape(2, 2) * to_frame).reshape(4), float(scores[i]), landmarks[i] * to_frame)
                for i in keep]

    def _decode(self, outputs: dict[str, np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(n, 4) boxes x, y, w, h, (n,) scores and (n, 5, 2) landmarks of the cells above the threshold."""
        boxes, scores, landmarks = [], [], []
        for stride in STRIDES:
            cols = width // stride
            cls = np.clip(outputs[f"cls_{stride}"].reshape(-1), 0.0, 1.0)
            obj = np.clip(outputs[f"obj_{stride}"].reshape(-1), 0.0, 1.0)
            score = np.sqrt(cls * obj)
            cells = np.flatnonzero(score >= self.score_threshold)
            bbox = outputs[f"bbox_{stride}"].reshape(-1, 4)[cells]
            kps = outputs[f"kps_{stride}"].reshape(-1, 5, 2)[cells]
            grid = np.stack([cells % cols, cells // cols], axis=1).astype(np.float32)   # (c, r)
            centre = (grid + bbox[:, :2]) * stride
            size = np.exp(bbox[:, 2:]) * stride
            boxes.append(np.concatenate([centre - size / 2, size], axis=1))
            landmarks.append((kps + grid[:, None, :]) * stride)
            scores.append(score[cells])
        return (np.concatenate(boxes).astype(np.float32), np.concatenate(scores).astype(np.float32),
                np.concatenate(landmarks).astype(np.float32))


def nms(boxes: np.ndarray, scores: np.ndarray, score_threshold: float, nms_threshold: float, top_k: int) -> list[int]:
    """Indices kept by OpenCV's ``dnn::NMSBoxes`` on integer boxes: best first, greedy, IoU > threshold removed."""
    candidates = [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] > score_threshold]
    if top_k > 0:
        candidates = candidates[:top_k]
    rects = np.trunc(boxes).astype(np.int64)   # OpenCV's Rect2i(int(x), int(y), int(w), int(h))
    kept: list[int] = []
    for index in candidates:
        if all(_iou(rects[index], rects[other]) <= nms_threshold for other in kept):
            kept.append(index)
    return kept


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two integer (x, y, w, h) rectangles, as OpenCV's ``rectOverlap``."""
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0
