"""The face detector that ``[detector]`` names, built on the inference backend of ``[models]`` where it runs there."""

from __future__ import annotations

from edge.config.schema import DetectorConfig, ModelsConfig
from edge.detectors.face import FaceDetector
from edge.detectors.yunet import YuNet
from edge.detectors.yunet_opencv import OpenCvYuNet
from edge.models import DETECTOR_MODEL
from edge.runtime.select import load_backend

DEFAULT_DETECTOR, DEFAULT_MODELS = DetectorConfig(), ModelsConfig()


def create_detector(detector: DetectorConfig = DEFAULT_DETECTOR, models: ModelsConfig = DEFAULT_MODELS) -> FaceDetector:
    """``detector.implementation``: ``opencv`` (cv2.FaceDetectorYN) or ``runtime`` (YuNet on ``models.backend``)."""
    path = detector.model or DETECTOR_MODEL
    thresholds = (detector.score_threshold, detector.nms_threshold, detector.top_k, detector.max_side)
    if detector.implementation == "opencv":
        return OpenCvYuNet(path, *thresholds)
    return YuNet(load_backend(path, models.backend, models.providers, models.threads), *thresholds)
