"""The fusion head -> ``fusion_head.onnx``, tied to the encoder ONNX models it must run on; parity on real embeddings.

``export_fusion`` takes the head saved by ``emotion-train fusion`` and the FP32 speech and face
ONNX models the device will run. It first checks that those are exports of the very encoders the
head was trained with, which the head records with their SHA-256: the encoder checkpoints (at
their recorded paths, or given) must still have that checksum, and each ONNX model must give the
embeddings its checkpoint gives on the same real inputs (max |Δ| within ``EMBEDDING_TOLERANCE``
of the largest embedding value). Then the head goes through ``export.ship.ship`` (opset 17,
dynamic batch, input ``embeddings`` = [speech embedding, face embedding], output ``logits``) with
a sidecar whose ``features`` tie it to the two ONNX files (name, SHA-256, embedding size;
``edge.fusion.head.head_features``), and ONNX Runtime is compared with torch on real embeddings:
the ONNX encoders' embeddings of the real speech windows and faces, paired at random (seeded).
The head stays FP32: it is one fc layer (docs/EXPORT.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edge.errors import InputError
from edge.fusion.head import FUSION_KIND, INPUT_NAME, ORDER, EncoderTie, head_features
from edge.runtime.onnxruntime_backend import OnnxRuntimeBackend
from edge.sidecar import file_sha256
from export.onnx_export import HEAD_OUTPUTS, OPSET
from export.ship import ShippedModel, ship
from train.fusion.data import Encoder, encode, load_face_encoder, load_speech_encoder
from train.fusion.training import load_fusion_head

EMBEDDING_TOLERANCE = 1e-3
NAME = "fusion_head"
BATCH = 256


@dataclass(frozen=True)
class FusionExport:
    """The exported head, and how closely each ONNX encoder reproduced its checkpoint's embeddings."""

    shipped: ShippedModel
    encoders: dict[str, dict[str, Any]]

    def report(self) -> dict[str, Any]:
        """What ``emotion-export onnx --fusion`` prints."""
        return {"onnx": str(self.shipped.onnx), "sha256": self.shipped.sidecar.sha256,
                **self.shipped.parity.to_dict(), "inputs": "real embedding pairs (ONNX encoders)",
                "encoders": self.encoders}


def _checkpoints(meta: dict[str, Any], given: Mapping[str, Path | None]) -> dict[str, Encoder]:
    """The encoder checkpoints the head was trained with, checked by checksum."""
    encoders = {}
    for name in ORDER:
        recorded = meta["encoders"][name]
        path = given.get(name) or Path(recorded["path"])
        if not path.is_file():
            raise InputError(f"the fusion head was trained with the {name} model {recorded['path']} (sha256 "
                             f"{recorded['sha256'][:12]}…), which is not there: give that checkpoint with --{name}")
        encoder = (load_speech_encoder if name == "speech" else load_face_encoder)(path)
        encoder.check_matches(recorded, name)
        encoders[name] = encoder
    return encoders


def _onnx_embeddings(model: OnnxRuntimeBackend, inputs: np.ndarray) -> np.ndarray:
    return np.concatenate([model.run(inputs[i : i + BATCH])["embedding"] for i in range(0, len(inputs), BATCH)])


def _check_encoder(name: str, checkpoint: Encoder, model: OnnxRuntimeBackend, inputs: np.ndarray,
                   width: int) -> tuple[np.ndarray, dict[str, Any]]:
    """The ONNX encoder's embeddings of ``inputs``, refused unless they are its checkpoint's."""
    if model.sidecar.kind != name or model.sidecar.precision != "fp32":
        raise InputError(f"{model.artifact}: a {model.sidecar.precision} {model.sidecar.kind} model; the head is tied "
                         f"to the FP32 {name} ONNX model (its INT8 and TensorRT builds are accepted by the daemon)")
    embeddings = _onnx_embeddings(model, inputs)
    expected = encode(checkpoint, torch.from_numpy(inputs))[0].numpy()
    if embeddings.shape != expected.shape or expected.shape[1] != width:
        raise InputError(f"{model.artifact}: gives {embeddings.shape[1]}-d embeddings, {checkpoint.path} "
                         f"{expected.shape[1]}-d ones and the head takes {width}-d {name} embeddings")
    diff = float(np.abs(embeddings - expected).max())
    if diff > EMBEDDING_TOLERANCE * max(1.0, float(np.abs(expected).max())):
        raise InputError(f"{model.artifact}: not an export of {checkpoint.path}, the {name} model the fusion head was "
                         f"trained with (embeddings differ by up to {diff:.3g} on {len(inputs)} real inputs); export "
                         f"that checkpoint (`emotion-export onnx --{name} {checkpoint.path} ...`) or give its ONNX "
                         f"model with --{name}-onnx")
    return embeddings, {"onnx": model.artifact.name, "sha256": model.sidecar.sha256,
                        "max_abs_embedding_diff": diff, "count": len(inputs)}


def parity_pairs(speech: np.ndarray, face: np.ndarray, seed: int = 0) -> np.ndarray:
    """Rows [speech embedding, face embedding]: every row of the larger set once, the smaller repeated, shuffled."""
    rng = np.random.default_rng(seed)
    n = max(len(speech), len(face))
    speech_rows = np.resize(rng.permutation(len(speech)), n)
    face_rows = np.resize(rng.permutation(len(face)), n)
    return np.concatenate([speech[speech_rows], face[face_rows]], axis=1).astype(np.float32)


def export_fusion(
    head_path: Path,
    encoder_onnx: Mapping[str, Path],
    real_inputs: Mapping[str, np.ndarray],
    out_dir: Path,
    metrics: dict[str, Any] | None = None,
    opset: int = OPSET,
    checkpoints: Mapping[str, Path | None] | None = None,
) -> FusionExport:
    """Export the head at ``head_path`` as ``out_dir/fusion_head.onnx`` + sidecar (see the module docstring).

    ``encoder_onnx`` and ``real_inputs`` are by modality (``speech``: raw MFCC windows, ``face``:
    0..255 crops N×1×H×W); ``checkpoints`` overrides the encoder checkpoint paths the head recorded.
    """
    head, meta = load_fusion_head(head_path)
    trained_with = _checkpoints(meta, checkpoints or {})
    widths = {"speech": head.speech_dim, "face": head.face_dim}
    embeddings, encoders, ties = {}, {}, {}
    for name in ORDER:
        model = OnnxRuntimeBackend(encoder_onnx[name])
        inputs = np.ascontiguousarray(real_inputs[name], dtype=np.float32)
        embeddings[name], encoders[name] = _check_encoder(name, trained_with[name], model, inputs, widths[name])
        ties[name] = EncoderTie(model.artifact.name, model.sidecar.sha256, widths[name])
    training = {**meta["training"], "encoders": meta["encoders"],
                "checkpoint": {"path": str(Path(head_path).resolve()), "sha256": file_sha256(head_path)}}
    shipped = ship(head, {**meta, "features": head_features(ties["speech"], ties["face"]), "training": training},
                   NAME, FUSION_KIND, INPUT_NAME, parity_pairs(embeddings["speech"], embeddings["face"]), out_dir,
                   metrics, opset, HEAD_OUTPUTS)
    return FusionExport(shipped=shipped, encoders=encoders)
