"""torch -> ONNX for the speech CNN, the face CNN and the fusion head, with a parity check.

Each graph takes one input with a dynamic batch axis. The encoders have two outputs, ``logits``
and ``embedding`` (the classifier's input, for model-level fusion); the fusion head, whose input
is those embeddings, has ``logits`` only (``HEAD_OUTPUTS``). Opset 17 with the TorchScript
exporter: opset 16 is the first with ``GridSample`` (the face model's spatial transformer), 17 is
the newest that every TensorRT from 8.5 parses, and the TorchScript exporter emits exactly the
requested opset (the dynamo exporter here emits 18). ``affine_grid`` has no symbolic below opset
20; ``export.stn_symbolics`` supplies one (see docs/EXPORT.md).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edge.runtime.onnxruntime_backend import OnnxRuntimeBackend
from export import stn_symbolics

OPSET = 17
OUTPUTS = ("logits", "embedding")
HEAD_OUTPUTS = ("logits",)


class _LogitsAndEmbedding(nn.Module):
    """Runs a model's ``forward`` once and also returns what its ``embed`` produced on the way.

    The model contract is ``forward(x) -> logits`` computed through ``embed(x) -> embedding``; the
    wrapper shadows ``embed`` on the instance during the call, so the graph holds one pass with two
    outputs, whatever the model names its last layer.
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        seen: list[torch.Tensor] = []
        embed = self.model.embed

        def recording_embed(inputs: torch.Tensor) -> torch.Tensor:
            seen.append(embed(inputs))
            return seen[-1]

        self.model.embed = recording_embed
        try:
            logits = self.model(x)
        finally:
            del self.model.embed
        if len(seen) != 1:
            raise ValueError(f"{type(self.model).__name__}.forward must call embed exactly once, it called it "
                             f"{len(seen)} times")
        return logits, seen[0]


def export_onnx(
    model: nn.Module,
    example: torch.Tensor,
    path: str | Path,
    input_name: str,
    opset: int = OPSET,
    outputs: tuple[str, ...] = OUTPUTS,
) -> Path:
    """Write ``model`` (eval mode) as ONNX with a dynamic batch axis; return the path.

    ``outputs`` is ``OUTPUTS`` for an encoder (its ``forward`` goes through its ``embed``) or
    ``HEAD_OUTPUTS`` for a model whose ``forward`` gives logits only. ``opset`` 13 gives a graph
    TensorRT 8.0/8.2 (JetPack 4.6) parses: the spatial transformer's sampling is then written out
    in opset-13 operators (``export.stn_symbolics``).
    """
    if outputs not in (OUTPUTS, HEAD_OUTPUTS):
        raise ValueError(f"outputs must be {OUTPUTS} or {HEAD_OUTPUTS}, got {outputs}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    stn_symbolics.register()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        # input checks in a forward (e.g. the fusion head's width check) are constants of the traced graph
        warnings.filterwarnings("ignore", "Converting a tensor to a Python boolean", torch.jit.TracerWarning)
        torch.onnx.export(
            _LogitsAndEmbedding(model).eval() if outputs == OUTPUTS else model,
            (example,),
            str(path),
            input_names=[input_name],
            output_names=list(outputs),
            opset_version=opset,
            dynamic_axes={input_name: {0: "batch"}, **{name: {0: "batch"} for name in outputs}},
            dynamo=False,
        )
    return path


@dataclass(frozen=True)
class Parity:
    """ONNX Runtime against torch on the same inputs.

    ``logit_range`` is the peak-to-peak range of torch's logits over the inputs: the scale a CPU's
    float32 rounding is relative to (``relative_logit_diff``).
    """

    max_abs_logit_diff: float
    argmax_agreement: float
    count: int
    logit_range: float

    @property
    def relative_logit_diff(self) -> float:
        return self.max_abs_logit_diff / self.logit_range if self.logit_range > 0 else float("inf")

    def to_dict(self) -> dict[str, float]:
        return {
            "max_abs_logit_diff": self.max_abs_logit_diff,
            "relative_logit_diff": self.relative_logit_diff,
            "argmax_agreement": self.argmax_agreement,
            "count": self.count,
        }


@torch.no_grad()
def check_parity(model: nn.Module, onnx_path: str | Path, inputs: np.ndarray, batch_size: int = 256) -> Parity:
    """Max abs logit difference and argmax agreement of the exported model (with sidecar) vs torch."""
    model.eval()
    backend = OnnxRuntimeBackend(onnx_path)
    diffs, agree, low, high = [], 0, np.inf, -np.inf
    for i in range(0, len(inputs), batch_size):
        batch = inputs[i : i + batch_size].astype(np.float32)
        expected = model(torch.from_numpy(batch)).numpy()
        actual = backend.run(batch)["logits"]
        diffs.append(float(np.abs(expected - actual).max()))
        low, high = min(low, float(expected.min())), max(high, float(expected.max()))
        agree += int((expected.argmax(1) == actual.argmax(1)).sum())
    return Parity(max_abs_logit_diff=max(diffs), argmax_agreement=agree / len(inputs), count=len(inputs),
                  logit_range=high - low)
