"""The reliability gate: equal to decision fusion at its start, saved and loaded, bad files refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.errors import ModelFileError
from edge.fusion.decision import confidence_weight, decision_fusion
from edge.fusion.gate import ReliabilityGate, load_gate, save_gate, softplus

EQUAL = ReliabilityGate(base={"face": float(np.log(np.expm1(1.0))), "speech": float(np.log(np.expm1(1.0)))},
                        slope={"face": 0.0, "speech": 0.0}, bias=(0.0,) * 7)


def _posteriors(n: int, seed: int) -> np.ndarray:
    p = np.random.default_rng(seed).dirichlet(np.ones(7), size=n)
    return p


def test_with_unit_weights_and_no_bias_the_gate_is_decision_fusion() -> None:
    both = {"face": _posteriors(5, 0), "speech": _posteriors(5, 1)}
    np.testing.assert_allclose(EQUAL.fuse(both), decision_fusion(both, {"face": 1.0, "speech": 1.0}), atol=1e-9)


def test_a_modality_weight_grows_with_its_confidence_when_its_slope_is_positive() -> None:
    gate = ReliabilityGate(base={"face": 0.0, "speech": 0.0}, slope={"face": 3.0, "speech": 0.0}, bias=(0.0,) * 7)
    sure, unsure = np.eye(7)[:1] * 0.94 + 0.01, np.full((1, 7), 1 / 7)
    weights = gate.weights({"face": np.concatenate([sure, unsure]), "speech": np.concatenate([sure, unsure])})
    assert weights["face"][0, 0] > weights["face"][1, 0] and weights["speech"][0, 0] == weights["speech"][1, 0]
    np.testing.assert_allclose(weights["face"][:, 0],
                               softplus(3.0 * confidence_weight(np.concatenate([sure, unsure]))[:, 0]))
    with pytest.raises(ValueError, match="fuses"):
        gate.fuse({"face": sure})


def test_a_saved_gate_loads_back_and_a_bad_file_is_refused_by_name(tmp_path: Path) -> None:
    gate = ReliabilityGate(base={"face": 0.3, "speech": -0.2}, slope={"face": 1.5, "speech": 2.5},
                           bias=(0.1, -0.1, 0.0, 0.2, 0.0, -0.3, 0.1))
    path = save_gate(gate, tmp_path / "gate.json", {"fitted_on": "a test"})
    assert load_gate(path) == gate
    bad = tmp_path / "bad.json"
    for text in ("{", '{"kind": "face"}', path.read_text().replace('"bias": [', '"bias": [9, ')):
        bad.write_text(text)
        with pytest.raises(ModelFileError, match="bad.json"):
            load_gate(bad)


def test_the_daemons_rule_uses_a_gate_for_both_modalities_and_the_posterior_alone_for_one(tmp_path: Path) -> None:
    from dataclasses import replace

    from edge.config.schema import Config
    from edge.fusion.decision import fuse
    from edge.models.loading import load_models

    gate = ReliabilityGate(base={"face": -1.0, "speech": 2.0}, slope={"face": 0.0, "speech": 0.0}, bias=(0.0,) * 7)
    face, speech = _posteriors(1, 2)[0], _posteriors(1, 3)[0]
    fused, method = fuse({"face": face, "speech": speech}, {"face": 1.0, "speech": 1.0}, gate=gate)
    assert method == "decision" and np.allclose(fused, gate.fuse({"face": face, "speech": speech}))
    assert not np.allclose(fused, fuse({"face": face, "speech": speech}, {"face": 1.0, "speech": 1.0})[0])
    alone, method = fuse({"face": face}, {"face": 1.0, "speech": 1.0}, gate=gate)
    assert method == "face_only" and np.allclose(alone, face)
    path = save_gate(gate, tmp_path / "gate.json", {"fitted_on": "a test"})
    config = replace(Config(), models=replace(Config().models, gate=path))
    assert load_models(config, video=True, audio=True).gate == gate
    assert load_models(config, video=True, audio=False).gate is None   # one modality: nothing to gate
