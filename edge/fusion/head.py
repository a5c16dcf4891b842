"""The model-level fusion head on the device, loaded tied to the encoders it was trained on.

A fusion head (``fusion_head.onnx`` of ``emotion-export onnx --fusion``) maps one speech embedding
and one face embedding, concatenated in that order (``ORDER``), to logits over ``EMOTIONS``.
Embeddings only mean something to the head for the very encoders it was trained with, so its
sidecar's ``features`` names them: per modality the encoder's ONNX file, SHA-256 and embedding
size (``EncoderTie``; ``head_features`` writes the section). ``FusionHeadModel`` refuses a head
whose kind, input width or labels are wrong, whose recorded encoders are not the speech and face
models loaded (their own checksum or that of the FP32 ONNX model they were quantized or built
from: ``edge.sidecar.lineage``), or whose encoders give embeddings of another size; each message
says what differs and how to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import InputError
from edge.fusion.decision import softmax, to_emotions
from edge.runtime.backend import Backend
from edge.sidecar import ModelSidecar, SidecarError, SidecarMismatchError, lineage

FUSION_KIND = "fusion"
INPUT_NAME = "embeddings"
ORDER = ("speech", "face")
"""The head's input: the speech embedding, then the face embedding."""
EMBEDDING_OUTPUT = "embedding"


@dataclass(frozen=True)
class EncoderTie:
    """The encoder a fusion head must be fed by: its ONNX file name, SHA-256 and embedding size."""

    model: str
    sha256: str
    embedding_size: int

    @classmethod
    def from_dict(cls, data: Any, origin: str) -> EncoderTie:
        try:
            tie = cls(model=str(data["model"]), sha256=str(data["sha256"]), embedding_size=int(data["embedding_size"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise SidecarError(f"{origin}: malformed encoder record {data!r} ({exc!r})") from exc
        if tie.embedding_size < 1:
            raise SidecarError(f"{origin}: encoder {tie.model} has embedding size {tie.embedding_size}")
        return tie


def head_features(speech: EncoderTie, face: EncoderTie) -> dict[str, Any]:
    """The ``features`` section of a fusion head's sidecar."""
    return {"input": f"[{ORDER[0]} {EMBEDDING_OUTPUT}, {ORDER[1]} {EMBEDDING_OUTPUT}] concatenated",
            "encoders": {"speech": asdict(speech), "face": asdict(face)}}


def encoder_ties(sidecar: ModelSidecar, artifact: Path) -> dict[str, EncoderTie]:
    """The encoders a fusion head's sidecar records, by modality; SidecarError when it is not a fusion head."""
    if sidecar.kind != FUSION_KIND:
        raise SidecarError(f"{artifact}: a {sidecar.kind!r} model, not a fusion head (kind {FUSION_KIND!r})")
    recorded = sidecar.features.get("encoders")
    if not isinstance(recorded, dict) or sorted(recorded) != sorted(ORDER):
        raise SidecarError(f"{artifact}: its sidecar does not record the speech and face encoders it was made for "
                           "(features.encoders); re-export it with `emotion-export onnx --fusion`")
    return {name: EncoderTie.from_dict(recorded[name], f"{artifact}: features.encoders.{name}") for name in ORDER}


def _reexport_hint(sidecar: ModelSidecar) -> str:
    checkpoint = sidecar.training.get("checkpoint", {})
    path = checkpoint.get("path", "fusion_head.pt") if isinstance(checkpoint, dict) else "fusion_head.pt"
    return (f"load the encoders it was made for, or export the head against yours (`emotion-export onnx --fusion "
            f"{path} --speech-onnx SPEECH.onnx --face-onnx FACE.onnx`, which checks that they are exports of the "
            "encoders it was trained with; a head for other encoders needs `emotion-train fusion` first)")


def embedding_size(encoder: Backend) -> int:
    """Width of the encoder's ``embedding`` output, from one run on a zero input."""
    if EMBEDDING_OUTPUT not in encoder.sidecar.outputs:
        raise SidecarMismatchError(f"{encoder.artifact}: the model has no {EMBEDDING_OUTPUT!r} output (outputs "
                                   f"{list(encoder.sidecar.outputs)}): re-export it with `emotion-export onnx`")
    shape = encoder.sidecar.input_shape[1:]
    if any(dim is None for dim in shape):
        raise SidecarMismatchError(f"{encoder.artifact}: input shape {list(encoder.sidecar.input_shape)} has "
                                   "dynamic dimensions beyond the batch")
    probe = np.zeros((1, *[int(dim) for dim in shape if dim is not None]), dtype=np.dtype(encoder.sidecar.input_dtype))
    return int(np.asarray(encoder.run(probe)[EMBEDDING_OUTPUT]).reshape(1, -1).shape[1])


def check_head(head: Backend, encoders: Mapping[str, Backend]) -> dict[str, EncoderTie]:
    """Refuse a head that cannot run on ``encoders`` (by modality); return its encoder records."""
    sidecar, artifact = head.sidecar, head.artifact
    ties = encoder_ties(sidecar, artifact)
    width = sum(tie.embedding_size for tie in ties.values())
    if tuple(sidecar.input_shape) != (None, width):
        raise SidecarMismatchError(
            f"{artifact}: the head takes input {list(sidecar.input_shape)}, but its encoders' embedding sizes "
            f"(speech {ties['speech'].embedding_size} + face {ties['face'].embedding_size}) make [None, {width}]")
    if "logits" not in sidecar.outputs:
        raise SidecarMismatchError(f"{artifact}: the head has no 'logits' output (outputs {list(sidecar.outputs)})")
    try:
        to_emotions(np.eye(len(sidecar.labels)), sidecar.labels)
    except ValueError as exc:
        raise SidecarMismatchError(f"{artifact}: labels {list(sidecar.labels)} do not map onto the 7 emotions "
                                   f"({exc})") from exc
    for name in ORDER:
        tie, encoder = ties[name], encoders[name]
        if tie.sha256 not in lineage(encoder.sidecar):
            raise SidecarMismatchError(
                f"{artifact}: this fusion head was made for the {name} model {tie.model} (sha256 {tie.sha256[:12]}…), "
                f"but the {name} model loaded is {encoder.artifact} (sha256 {encoder.sidecar.sha256[:12]}…, neither "
                f"that model nor made from it); {_reexport_hint(sidecar)}")
        size = embedding_size(encoder)
        if size != tie.embedding_size:
            raise SidecarMismatchError(
                f"{artifact}: this fusion head takes {tie.embedding_size}-d {name} embeddings, but the {name} model "
                f"{encoder.artifact} gives {size}-d ones; {_reexport_hint(sidecar)}")
    return ties


class FusionHeadModel:
    """A fusion head checked against the speech and face models it runs on (see the module docstring)."""

    def __init__(self, head: Backend, speech: Backend, face: Backend) -> None:
        self.encoders = {"speech": speech, "face": face}
        ties = check_head(head, self.encoders)
        self.head = head
        self.sizes = {name: tie.embedding_size for name, tie in ties.items()}

    @property
    def artifact(self) -> Path:
        return self.head.artifact

    def posterior(self, speech: np.ndarray, face: np.ndarray) -> np.ndarray:
        """Posterior over ``EMOTIONS`` (7,) of one speech and one face embedding, or the mean posterior over
        every pair of rows of ``speech`` (n, ds) and ``face`` (m, df)."""
        rows = {"speech": np.atleast_2d(np.asarray(speech, dtype=np.float32)),
                "face": np.atleast_2d(np.asarray(face, dtype=np.float32))}
        for name, array in rows.items():
            if array.ndim != 2 or array.shape[1] != self.sizes[name] or len(array) == 0:
                raise InputError(f"{self.artifact.name}: {name} embeddings of shape {array.shape}, the head takes "
                                 f"{self.sizes[name]}-d ones")
        n, m = len(rows["speech"]), len(rows["face"])
        pairs = np.concatenate([np.repeat(rows["speech"], m, axis=0), np.tile(rows["face"], (n, 1))], axis=1)
        logits = self.head.run(pairs)["logits"]
        return np.asarray(to_emotions(softmax(logits), self.head.sidecar.labels).mean(axis=0))
