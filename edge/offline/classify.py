"""Offline classification of image, audio and video files with the shipped ONNX models (no torch).

Images: faces are detected, aligned and classified (or, with ``face_crops``, the image is taken as
an aligned face crop). Audio: silence is trimmed, 1 s MFCC windows are classified and their
posteriors averaged. Video: both, fused by the daemon's rule (``edge.fusion.decision.fuse``): with a fusion
head, the head's mean posterior over every pair of a speech window and a key face; without one, or
with one modality, the decision-level fusion of the modalities' mean posteriors. Every result is a
JSON-ready dict with the fused label and posterior (7 emotions), how it was fused, and the label
and posterior per modality.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.config.schema import Config
from edge.detectors.face import Face
from edge.errors import InputError, NoAudioStreamError, NoVideoStreamError
from edge.features.alignment import AlignParams, align_face
from edge.features.audio import load_audio
from edge.features.keyfaces import key_face_indices
from edge.features.media import check_file
from edge.features.mfcc import MfccParams, mfcc_windows
from edge.features.vad import VadParams, trim_silence
from edge.features.video import iter_video_frames, open_clip
from edge.fusion.decision import decision_weights, fuse, softmax, to_emotions
from edge.models.loading import Models
from edge.pipeline.model_inputs import face_features, speech_features
from edge.taxonomy import EMOTIONS

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def _posterior_record(posterior: np.ndarray, labels: tuple[str, ...] | list[str]) -> dict[str, Any]:
    return {
        "label": labels[int(np.argmax(posterior))],
        "posterior": {label: round(float(p), 4) for label, p in zip(labels, posterior, strict=True)},
    }


class Classifier:
    """Runs the speech and face models of ``models`` over files; either model may be absent.

    ``config`` gives the key-face radius and the decision-fusion weights (``[pipeline]``, as in the
    daemon); ``every_nth`` samples video frames; with ``face_crops`` images are taken as aligned
    face crops (no detection).
    """

    def __init__(self, models: Models, config: Config, every_nth: int = 1, face_crops: bool = False) -> None:
        if every_nth < 1:
            raise InputError(f"every_nth must be at least 1, got {every_nth}")
        self.speech, self.face, self.fusion_head = models.speech, models.face, models.fusion_head
        self.gate = models.gate
        if self.face is not None and models.detector is None:
            raise InputError("a face model needs a face detector")
        self.detector = models.detector
        self.every_nth, self.face_crops = every_nth, face_crops
        self.config = config
        self.key_face_radius = config.pipeline.key_face_radius
        self.weights = decision_weights(config.pipeline)
        self.mfcc, self.vad = speech_features(self.speech) if self.speech else (MfccParams(), VadParams())
        self.align = face_features(self.face) if self.face else AlignParams()

    def detect(self, image: np.ndarray) -> list[Face]:
        """The faces the configured detector finds in ``image``."""
        assert self.detector is not None
        return self.detector.detect(image)

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
        keys = key_face_indices(crops, self.key_face_radius)
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
        if self.face_crops:
            size = self.align.crop_size
            crops = [cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (size, size), interpolation=cv2.INTER_AREA)]
        else:
            crops = [align_face(image, f.landmarks, self.align) for f in self.detect(image)[:1]]
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
        for frame in iter_video_frames(path, self.every_nth):
            frames += 1
            faces = self.detect(frame.image)
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
            fused, method = fuse(present, self.weights, embeddings, self.fusion_head,
                                 self.config.pipeline.weight_by_confidence, self.gate)
            out.update({**_posterior_record(fused, EMOTIONS), "fusion": method})
        else:
            out.update({"label": None, "reason": "no usable modality (no face and no speech found)"})
        out["modalities"] = modalities
        return out
