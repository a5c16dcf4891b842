"""Offline classification of image, audio and video files with the shipped ONNX models (no torch).

Images: faces are detected, aligned and classified (or, with ``face_crops``, the image is taken as
an aligned face crop). Audio: silence is trimmed, 1 s MFCC windows are classified and their
posteriors averaged. Video: both, fused by the daemon's rule (``edge.fusion.fuse``): with a fusion
head, the head's mean posterior over every pair of a speech window and a key face; without one, or
with one modality, the decision-level fusion of the modalities' mean posteriors. Every result is a
JSON-ready dict with the fused label and posterior (7 emotions), how it was fused, and the label
and posterior per modality.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.errors import InputError, NoAudioStreamError, NoVideoStreamError
from edge.features.alignment import AlignParams, align_face
from edge.features.audio import load_audio
from edge.features.faces import FaceDetector
from edge.features.keyfaces import key_face_indices
from edge.features.media import check_file
from edge.features.mfcc import MfccParams, mfcc_windows
from edge.features.vad import VadParams, trim_silence
from edge.features.video import iter_video_frames, open_clip
from edge.fusion import EmbeddingFusion, fuse, softmax, to_emotions
from edge.runtime.backend import Backend
from edge.sidecar import check_features
from edge.taxonomy import EMOTIONS

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def _posterior_record(posterior: np.ndarray, labels: tuple[str, ...] | list[str]) -> dict[str, Any]:
    return {
        "label": labels[int(np.argmax(posterior))],
        "posterior": {label: round(float(p), 4) for label, p in zip(labels, posterior, strict=True)},
    }


@dataclass(frozen=True)
class ClassifySettings:
    """Frame sampling, key faces and fusion weights for video; crop handling for images."""

    every_nth: int = 1
    key_face_radius: int = 5
    fusion_weights: tuple[tuple[str, float], ...] = (("speech", 1.0), ("face", 1.0))
    face_crops: bool = False


class Classifier:
    """Runs the speech and face models over files; either model may be absent."""

    def __init__(
        self,
        speech: Backend | None,
        face: Backend | None,
        detector: FaceDetector,
        settings: ClassifySettings,
        fusion_head: EmbeddingFusion | None = None,
    ) -> None:
        self.speech, self.face, self.detector, self.settings = speech, face, detector, settings
        self.fusion_head = fusion_head
        self.mfcc = MfccParams(**speech.sidecar.features["mfcc"]) if speech else MfccParams()
        self.vad = VadParams(**speech.sidecar.features["vad"]) if speech else VadParams()
        self.align = AlignParams(**face.sidecar.features["align"]) if face else AlignParams()
        if speech:
            check_features(speech.sidecar, {"mfcc": self.mfcc.to_dict(), "vad": self.vad.to_dict()}, speech.artifact)
        if face:
            check_features(face.sidecar, {"align": self.align.to_dict()}, face.artifact)

    def _face_outputs(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        assert self.face is not None
        return self.face.run(crops.astype(np.float32)[:, None])

    def _speech_result(self, audio: np.ndarray) -> dict[str, Any] | None:
        if self.speech is None:
            return None
        speech = trim_silence(audio, self.mfcc.sample_rate, self.vad)
        if speech.size == 0:
            return {"label": None, "reason": "no speech found", "windows": 0}
        outputs = self.speech.run(mfcc_windows(speech, self.mfcc))
        mean = softmax(outputs["logits"]).mean(axis=0)
        return {**_posterior_record(mean, self.speech.sidecar.labels), "windows": len(outputs["logits"]), "_p": mean,
                "_e": outputs.get("embedding")}

    def _crops_result(self, crops: list[np.ndarray], frames: int) -> dict[str, Any] | None:
        if self.face is None:
            return None
        if not crops:
            return {"label": None, "reason": "no face found", "frames": frames, "faces": 0}
        keys = key_face_indices(crops, self.settings.key_face_radius)
        outputs = self._face_outputs(np.stack([crops[i] for i in keys]))
        mean = softmax(outputs["logits"]).mean(axis=0)
        return {**_posterior_record(mean, self.face.sidecar.labels), "frames": frames, "faces": len(crops),
                "key_faces": len(keys), "_p": mean, "_e": outputs.get("embedding")}

    def _image(self, path: Path) -> dict[str, Any]:
        check_file(path)
        # decoded from the bytes: cv2.imread prints its own warnings about files it cannot open
        image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{path}: not a readable image (OpenCV cannot decode it)")
        if self.settings.face_crops:
            size = self.align.crop_size
            crops = [cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (size, size), interpolation=cv2.INTER_AREA)]
        else:
            crops = [align_face(image, f.landmarks, self.align) for f in self.detector.detect(image)[:1]]
        return {"modalities": {"face": self._crops_result(crops, 1)}}

    def _audio(self, path: Path) -> dict[str, Any]:
        return {"modalities": {"speech": self._speech_result(load_audio(path, self.mfcc.sample_rate))}}

    def _video(self, path: Path) -> dict[str, Any]:
        speech: dict[str, Any] | None
        try:
            speech = self._speech_result(open_clip(path, self.mfcc.sample_rate).audio)
        except NoAudioStreamError:
            speech = {"label": None, "reason": "the file has no audio track", "windows": 0} if self.speech else None
        crops, frames = [], 0
        for frame in iter_video_frames(path, self.settings.every_nth):
            frames += 1
            faces = self.detector.detect(frame.image)
            if faces:
                crops.append(align_face(frame.image, faces[0].landmarks, self.align))
        return {"modalities": {"speech": speech, "face": self._crops_result(crops, frames)}}

    def classify(self, path: str | Path) -> dict[str, Any]:
        """One JSON-ready result for a file: fused label and posterior, and per-modality results."""
        path = Path(path)
        if path.suffix.lower() in IMAGE_SUFFIXES:
            result = self._image(path)
        else:
            try:
                result = self._video(path)
            except NoVideoStreamError:
                result = self._audio(path)
        modalities = {name: r for name, r in result["modalities"].items() if r is not None}
        present, embeddings = {}, {}
        for name, record in modalities.items():
            posterior, embeddings[name] = record.pop("_p", None), record.pop("_e", None)
            if posterior is not None:
                backend = self.speech if name == "speech" else self.face
                assert backend is not None
                present[name] = to_emotions(posterior, backend.sidecar.labels)
        out: dict[str, Any] = {"path": str(path)}
        if present:
            fused, method = fuse(present, dict(self.settings.fusion_weights), embeddings, self.fusion_head)
            out.update({**_posterior_record(fused, EMOTIONS), "fusion": method})
        else:
            out.update({"label": None, "reason": "no usable modality (no face and no speech found)"})
        out["modalities"] = modalities
        return out
