"""Reliability-gated decision fusion: each modality's weight is learned as a function of how sure it is.

For calibrated posteriors ``p_m`` over ``EMOTIONS`` (m = face, speech), the fused posterior is

    softmax( sum_m w_m * log p_m + b ),   w_m = softplus(a_m + c_m * confidence(p_m))

with ``confidence`` = 1 - normalised entropy (``edge.fusion.decision.confidence_weight``) and
``b`` a per-class bias. The 11 numbers are fitted offline by ``emotion-bench fusion-pairs`` on
out-of-fold posteriors: every speech window scored by the CV fold model that never heard its actor,
every face by the face model on images it was not trained on, so the gate learns how far each
modality can be trusted on data it has not seen (an embedding head cannot: fold models' embedding
spaces differ, their calibrated posteriors share one). With one modality present the gate is not
used: that modality's posterior is the answer, as in ``decision_fusion``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ModelFileError
from edge.fusion.decision import MODALITIES, confidence_weight
from edge.taxonomy import EMOTIONS

GATE_KIND = "fusion-gate"
_FLOOR = 1e-6


def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


@dataclass(frozen=True)
class ReliabilityGate:
    """``a`` and ``c`` per modality and the class bias ``b`` (see the module docstring)."""

    base: Mapping[str, float]
    slope: Mapping[str, float]
    bias: tuple[float, ...]

    def weights(self, posteriors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each modality's weight per input (a size-1 last axis)."""
        return {name: softplus(self.base[name] + self.slope[name] * confidence_weight(p))
                for name, p in posteriors.items()}

    def fuse(self, posteriors: Mapping[str, np.ndarray]) -> np.ndarray:
        """The gated posterior over ``EMOTIONS`` of both modalities' posteriors (one or a batch)."""
        if set(posteriors) != set(MODALITIES):
            raise ValueError(f"the gate fuses {MODALITIES}, got {sorted(posteriors)}")
        weights = self.weights(posteriors)
        logits = sum(weights[name] * np.log(np.clip(np.asarray(p, dtype=np.float64), _FLOOR, 1.0))
                     for name, p in posteriors.items()) + np.asarray(self.bias)
        logits = np.asarray(logits, dtype=np.float64)
        fused = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return fused / fused.sum(axis=-1, keepdims=True)

    def to_dict(self) -> dict[str, Any]:
        return {"base": dict(self.base), "slope": dict(self.slope), "bias": list(self.bias)}


def save_gate(gate: ReliabilityGate, path: str | Path, provenance: Mapping[str, Any]) -> Path:
    """Write the gate and where it came from as JSON."""
    path = Path(path)
    path.write_text(json.dumps({"kind": GATE_KIND, "labels": list(EMOTIONS), **gate.to_dict(),
                                "training": dict(provenance)}, indent=2) + "\n")
    return path


def load_gate(path: str | Path) -> ReliabilityGate:
    """A gate written by ``save_gate``; ModelFileError naming the file when it is not one."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
        if record.get("kind") != GATE_KIND or record.get("labels") != list(EMOTIONS):
            raise ValueError(f"not a {GATE_KIND} over {list(EMOTIONS)}")
        gate = ReliabilityGate(base={m: float(record["base"][m]) for m in MODALITIES},
                               slope={m: float(record["slope"][m]) for m in MODALITIES},
                               bias=tuple(float(b) for b in record["bias"]))
        if len(gate.bias) != len(EMOTIONS):
            raise ValueError(f"{len(gate.bias)} class biases for {len(EMOTIONS)} emotions")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{path}: not a usable fusion gate ({exc})") from exc
    return gate
