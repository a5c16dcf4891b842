"""Small real ONNX models with sidecars, shaped like the shipped speech and face CNNs and a fusion head.

Each graph computes ``logits = flatten(x) @ W + b`` (and, for the encoders, ``embedding = logits``)
with tiny random weights and a chosen bias, so a test knows which label a model favours whatever
the input. ``fusion_head`` takes the two encoders' embeddings and records them as its encoders.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edge.features.alignment import AlignParams
from edge.features.mfcc import MfccParams
from edge.features.vad import VadParams
from edge.fusion.head import FUSION_KIND, INPUT_NAME, EncoderTie, head_features
from edge.sidecar import ModelSidecar, file_sha256, write_sidecar
from edge.taxonomy import EMOTIONS, RAVDESS_LABELS


def _linear_model(path: Path, input_name: str, shape: tuple[int, ...], labels: tuple[str, ...], favour: str,
                  kind: str, features: dict, embedding: bool = True) -> Path:
    size = int(np.prod(shape))
    rng = np.random.default_rng(0)
    weights = (rng.normal(size=(size, len(labels))) * 1e-6).astype(np.float32)
    bias = np.zeros(len(labels), dtype=np.float32)
    bias[labels.index(favour)] = 4.0
    outputs = ("logits", "embedding") if embedding else ("logits",)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", [input_name], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "W", "b"], ["logits"]),
            *([helper.make_node("Identity", ["logits"], ["embedding"])] if embedding else []),
        ],
        f"tiny_{kind}",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", *shape])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", len(labels)]) for name in outputs],
        initializer=[numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    write_sidecar(path, ModelSidecar(
        name=f"tiny_{kind}", kind=kind, labels=labels, input_name=input_name, input_shape=(None, *shape),
        outputs=outputs, sha256=file_sha256(path), features=features,
    ))
    return path


def speech_model(directory: Path, favour: str = "happy") -> Path:
    mfcc = MfccParams()
    shape = (1 + mfcc.delta_order, mfcc.frames_per_window, mfcc.numcep)
    return _linear_model(directory / f"speech_{favour}.onnx", "mfcc", shape, RAVDESS_LABELS, favour, "speech",
                         {"mfcc": mfcc.to_dict(), "vad": VadParams().to_dict()})


def face_model(directory: Path, favour: str = "happy") -> Path:
    size = AlignParams().crop_size
    return _linear_model(directory / f"face_{favour}.onnx", "face", (1, size, size), EMOTIONS, favour, "face",
                         {"align": AlignParams().to_dict()})


def fusion_head(directory: Path, speech: Path, face: Path, favour: str = "surprised") -> Path:
    """A fusion head over the embeddings of the tiny ``speech`` and ``face`` models, tied to them by checksum."""
    ties = [EncoderTie(path.name, file_sha256(path), size)
            for path, size in ((speech, len(RAVDESS_LABELS)), (face, len(EMOTIONS)))]
    width = sum(tie.embedding_size for tie in ties)
    return _linear_model(directory / f"fusion_{favour}.onnx", INPUT_NAME, (width,), EMOTIONS, favour, FUSION_KIND,
                         head_features(*ties), embedding=False)


def fusion_set(directory: Path) -> dict[str, Path]:
    """Face model favouring happy, speech model favouring sad, and a fusion head over both favouring surprised."""
    models = {"face": face_model(directory, "happy"), "speech": speech_model(directory, "sad")}
    return {**models, "fusion": fusion_head(directory, models["speech"], models["face"], "surprised")}
