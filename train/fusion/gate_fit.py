"""Fitting the reliability gate (``edge.fusion.gate``) to out-of-fold posterior pairs by maximum likelihood.

The 11 parameters (``a`` and ``c`` per modality, 7 class biases) minimise the mean negative log
likelihood of the fused posterior plus a small L2 penalty on the biases, by L-BFGS from
``a = softplus^-1(1), c = 0, b = 0`` (plain decision fusion with equal weights): a convex-looking,
tiny problem that needs no epochs, so nothing is chosen on the data the gate is then tested on.
Without ``class_bias`` the biases stay 0 and only the 4 weight parameters are fitted: the gate then
cannot learn the fitting data's class mix, only how far each modality is to be trusted.
"""

from __future__ import annotations

import numpy as np
import torch

from edge.fusion.decision import MODALITIES, confidence_weight
from edge.fusion.gate import ReliabilityGate

_FLOOR = 1e-6
BIAS_L2 = 1e-3


def fit_gate(posteriors: dict[str, np.ndarray], labels: np.ndarray, iterations: int = 200,
             class_bias: bool = True) -> ReliabilityGate:
    """The gate that best explains ``labels`` (EMOTIONS ids) from each modality's posteriors (n, 7)."""
    logs = {m: torch.log(torch.from_numpy(np.clip(posteriors[m], _FLOOR, 1.0))) for m in MODALITIES}
    confidence = {m: torch.from_numpy(confidence_weight(posteriors[m])) for m in MODALITIES}
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    start = float(np.log(np.expm1(1.0)))
    base = torch.full((len(MODALITIES),), start, dtype=torch.float64, requires_grad=True)
    slope = torch.zeros(len(MODALITIES), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(logs[MODALITIES[0]].shape[1], dtype=torch.float64, requires_grad=class_bias)
    fitted = [base, slope, bias] if class_bias else [base, slope]
    optimiser = torch.optim.LBFGS(fitted, max_iter=iterations, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        logits = bias + sum(torch.nn.functional.softplus(base[i] + slope[i] * confidence[m]) * logs[m]
                            for i, m in enumerate(MODALITIES))
        value = torch.nn.functional.cross_entropy(logits, y) + BIAS_L2 * (bias ** 2).sum()
        value.backward()
        return value

    optimiser.step(loss)
    fitted_base, fitted_slope = base.detach().tolist(), slope.detach().tolist()
    return ReliabilityGate(base=dict(zip(MODALITIES, fitted_base, strict=True)),
                           slope=dict(zip(MODALITIES, fitted_slope, strict=True)),
                           bias=tuple(bias.detach().tolist()))


def leave_one_group_out(posteriors: dict[str, np.ndarray], labels: np.ndarray, groups: np.ndarray,
                        class_bias: bool = False) -> np.ndarray:
    """Each group's fused posteriors by a gate fitted on every other group (e.g. one clip left out at a time).

    The gate of a group never sees that group's labels. Without ``class_bias`` (the default) it cannot
    learn the other groups' class mix, which on a few clips is biased against the class left out.
    """
    fused = np.empty_like(posteriors[MODALITIES[0]], dtype=np.float64)
    for group in np.unique(groups):
        inside = groups == group
        gate = fit_gate({m: p[~inside] for m, p in posteriors.items()}, labels[~inside], class_bias=class_bias)
        fused[inside] = gate.fuse({m: p[inside] for m, p in posteriors.items()})
    return fused
