"""Loading what the configuration names: the models on their backend, the fusion gate or head, the face detector.

The daemon and ``emotion-edge classify`` both assemble their models here, from the same
``Config``, so a setting (backend, providers, detector, fusion head) means the same in both.
Only the modalities asked for are loaded: no face model or detector without video, no speech
model without audio.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2

from edge.config.schema import Config, DetectorConfig, ModelsConfig
from edge.detectors.face import FaceDetector
from edge.detectors.yunet import YuNet
from edge.detectors.yunet_opencv import OpenCvYuNet
from edge.fusion.gate import ReliabilityGate, load_gate
from edge.fusion.head import FusionHeadModel
from edge.models import DETECTOR_MODEL, FACE_MODEL, SPEECH_MODEL, shipped_fusion_gate, shipped_fusion_head
from edge.runtime.backend import Backend
from edge.runtime.select import DEFAULT_MODELS, load_backend, load_encoder

log = logging.getLogger(__name__)
DEFAULT_DETECTOR = DetectorConfig()


@dataclass(frozen=True)
class Models:
    """The loaded models of one run; ``None`` where a modality is not used."""

    speech: Backend | None
    face: Backend | None
    detector: FaceDetector | None
    fusion_head: FusionHeadModel | None
    gate: ReliabilityGate | None = None


def create_detector(detector: DetectorConfig = DEFAULT_DETECTOR, models: ModelsConfig = DEFAULT_MODELS) -> FaceDetector:
    """``detector.implementation``: ``opencv`` (cv2.FaceDetectorYN) or ``runtime`` (YuNet on ``models.backend``)."""
    path = detector.model or DETECTOR_MODEL
    thresholds = (detector.score_threshold, detector.nms_threshold, detector.top_k, detector.max_side)
    if detector.implementation == "opencv":
        if models.threads > 0:   # OpenCV's pool is the process's: YuNet's, and the resizing and alignment around it
            cv2.setNumThreads(models.threads)
        return OpenCvYuNet(path, *thresholds)
    return YuNet(load_backend(path, models), *thresholds)


def fusion_head(models: ModelsConfig, speech: Backend | None, face: Backend | None) -> FusionHeadModel | None:
    """The fusion head to use, checked against the speech and face models; None for decision-level fusion.

    That is ``models.fusion``, or the shipped head when the speech and face models are the shipped
    ones; none when ``models.model_fusion`` is false. With only one modality coming in, the head
    could never run: it is not loaded (with a warning when ``models.fusion`` names one).
    """
    path = models.fusion or shipped_fusion_head(models.speech, models.face)
    if not models.model_fusion or path is None:
        return None
    if speech is None or face is None:
        if models.fusion is not None:
            log.warning("models.fusion is set, but only %s is used: fusing at the decision level",
                        "video" if speech is None else "audio")
        return None
    return FusionHeadModel(load_backend(path, models), speech=speech, face=face)


def fusion_gate(models: ModelsConfig, speech: Backend | None, face: Backend | None) -> ReliabilityGate | None:
    """The reliability gate: ``models.gate``, or the shipped one with the shipped models; none when
    ``models.gated_fusion`` is false or only one modality comes in (the fixed weights then)."""
    path = models.gate or shipped_fusion_gate(models.speech, models.face)
    if not models.gated_fusion or path is None or speech is None or face is None:
        return None
    return load_gate(path)


def load_models(config: Config, *, video: bool, audio: bool) -> Models:
    """The speech model (with ``audio``), the face model and detector (with ``video``), the gate and the head."""
    models = config.models
    face = load_encoder(models.face or FACE_MODEL, models) if video else None
    speech = load_encoder(models.speech or SPEECH_MODEL, models) if audio else None
    detector = create_detector(config.detector, models) if video else None
    return Models(speech=speech, face=face, detector=detector, fusion_head=fusion_head(models, speech, face),
                  gate=fusion_gate(models, speech, face))
