"""Turns trained checkpoints into the shipped ONNX models: graph, sidecar and parity check.

The speech and face checkpoints (``train.speech.training`` / ``train.face.training``) carry their
labels, feature parameters and training facts; this writes ``<name>.onnx`` and ``<name>.json``
into the models folder and checks ONNX Runtime against torch on real inputs. The fusion head goes
through the same function from ``export.fusion_export``, which adds its ties to the encoders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edge.sidecar import ModelSidecar, file_sha256, write_sidecar
from export.onnx_export import OPSET, OUTPUTS, Parity, check_parity, export_onnx


@dataclass(frozen=True)
class ShippedModel:
    """Where a shipped model went and how closely it matches torch."""

    onnx: Path
    sidecar: ModelSidecar
    parity: Parity


def ship(
    model: nn.Module,
    meta: dict[str, Any],
    name: str,
    kind: str,
    input_name: str,
    real_inputs: np.ndarray,
    out_dir: Path,
    metrics: dict[str, Any] | None = None,
    opset: int = OPSET,
    outputs: tuple[str, ...] = OUTPUTS,
) -> ShippedModel:
    """Export ``model`` with the checkpoint's ``meta`` as ``out_dir/<name>.onnx`` + sidecar."""
    onnx_path = export_onnx(
        model, torch.from_numpy(real_inputs[:2].astype(np.float32)), out_dir / f"{name}.onnx", input_name, opset,
        outputs,
    )
    shape = tuple(None if isinstance(dim, str) else int(dim) for dim in meta["input"]["shape"])
    sidecar = ModelSidecar(
        name=name,
        kind=kind,
        labels=tuple(meta["labels"]),
        input_name=input_name,
        input_shape=shape,
        outputs=outputs,
        sha256=file_sha256(onnx_path),
        features=meta["features"],
        normalisation={"layout": meta["input"]["layout"], "inside_graph": meta["input"]["normalisation"]},
        training={
            **meta["training"],
            "model": meta["model"],
            "model_config": meta["model_config"],
            "weight_layers": meta["weight_layers"],
            "parameters": meta["parameters"],
        },
        metrics=metrics or {},
        source={"exporter": "torch.onnx (TorchScript)", "torch": torch.__version__, "opset": opset},
    )
    write_sidecar(onnx_path, sidecar)
    return ShippedModel(onnx=onnx_path, sidecar=sidecar, parity=check_parity(model, onnx_path, real_inputs))
