"""Fitting the reliability gate, the pairs benchmark's folds, and out-of-fold speech posteriors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.fusion.decision import decision_fusion
from edge.taxonomy import EMOTIONS
from train.confidence import negative_log_likelihood
from train.fusion.gate_fit import fit_gate, leave_one_group_out
from train.fusion.pairs import OutOfFold, gate_method, run_pairs, summary_rows


def _noisy(labels: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Posteriors that lean to the true label by ``strength`` (0: pure noise)."""
    logits = rng.normal(size=(len(labels), len(EMOTIONS)))
    logits[np.arange(len(labels)), labels] += strength
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def test_the_gate_trusts_the_informative_modality_and_beats_equal_weights() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, len(EMOTIONS), 3000)
    posteriors = {"face": _noisy(labels, 3.0, rng), "speech": _noisy(labels, 0.3, rng)}
    gate = fit_gate(posteriors, labels)
    weights = gate.weights(posteriors)
    assert weights["face"].mean() > 2 * weights["speech"].mean()
    equal = decision_fusion(posteriors, {"face": 1.0, "speech": 1.0})
    nll = {name: negative_log_likelihood(np.log(p), labels) for name, p in
           (("gate", gate.fuse(posteriors)), ("equal", equal), ("face", posteriors["face"]))}
    assert nll["gate"] < nll["equal"] and nll["gate"] <= nll["face"] + 1e-3


def test_a_gate_without_class_bias_learns_the_weights_but_not_the_class_mix() -> None:
    rng = np.random.default_rng(2)
    labels = rng.choice(len(EMOTIONS), 3000, p=[0.7] + [0.05] * 6)   # one class dominates
    posteriors = {"face": _noisy(labels, 2.0, rng), "speech": _noisy(labels, 0.3, rng)}
    biased, unbiased = fit_gate(posteriors, labels), fit_gate(posteriors, labels, class_bias=False)
    assert max(abs(b) for b in biased.bias) > 0.5 and unbiased.bias == (0.0,) * len(EMOTIONS)
    weights = unbiased.weights(posteriors)
    assert weights["face"].mean() > 2 * weights["speech"].mean()


def test_a_left_out_group_is_fused_by_a_gate_that_never_saw_its_labels() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, len(EMOTIONS), 600)
    groups = np.repeat(np.arange(6), 100)
    posteriors = {"face": _noisy(labels, 0.2, rng), "speech": _noisy(labels, 2.5, rng)}
    fused = leave_one_group_out(posteriors, labels, groups)
    relabelled = labels.copy()
    relabelled[groups == 2] = rng.integers(0, len(EMOTIONS), 100)   # group 2's labels do not reach its gate
    again = leave_one_group_out(posteriors, relabelled, groups)
    assert np.array_equal(fused[groups == 2], again[groups == 2])
    assert not np.allclose(fused[groups != 2], again[groups != 2])  # the other groups' gates did see them
    assert (fused.argmax(1) == labels).mean() >= (posteriors["speech"].argmax(1) == labels).mean() - 0.01


def test_gate_files_name_their_methods() -> None:
    assert [gate_method(Path(name)) for name in ("runs/p/gate.json", "gate_weights.json", "mine.json")] == [
        "gated", "gated_weights", "gated_mine"]


def test_each_fold_is_tested_on_its_own_actors_with_a_gate_fitted_on_the_others() -> None:
    rng = np.random.default_rng(1)
    n = 400
    labels = rng.integers(0, len(EMOTIONS), n)
    speech = OutOfFold(posteriors=_noisy(labels, 1.0, rng), fold_of_window=np.repeat([0, 1, -1, 1], n // 4),
                       labels=labels, folds=[{"fold": 0, "test_actors": [1]}, {"fold": 1, "test_actors": [7]}])
    face_labels = rng.integers(0, len(EMOTIONS), 300)
    results, gates = run_pairs(speech, _noisy(face_labels, 2.0, rng), face_labels, _noisy(face_labels, 2.0, rng),
                               face_labels, per_window=2, seed=0)
    assert [r["fold"] for r in results] == [0, 1] and [sorted(g) for g in gates] == [["gated", "gated_weights"]] * 2
    assert results[0]["scores"]["speech"]["pairs"] == 2 * (n // 4)   # fold 0's windows, two faces each
    assert results[1]["scores"]["gated"]["pairs"] == 2 * (n // 2)
    assert results[0]["fitting_pairs"] == 2 * (n // 2)                # fitted on fold 1's windows only
    rows = summary_rows(results)
    assert [r["method"] for r in rows] == ["speech", "face", "decision", "decision_confidence", "gated",
                                           "gated_weights"]
    assert all(0 <= r["accuracy"] <= 1 and 0 <= r["ece"] <= 1 and r["accuracy_std"] >= 0 for r in rows)


@pytest.mark.shared_data
def test_out_of_fold_posteriors_come_from_the_fold_model_calibrated_on_its_validation_actors(
        small_cache: Path, tmp_path: Path) -> None:
    from train.cli.bench import main as bench_main
    from train.data.feature_cache import load_speech_cache
    from train.fusion.pairs import out_of_fold_speech

    cv = tmp_path / "cv"
    assert bench_main(["speech", "--cache", str(small_cache), "--folds", "0", "--epochs", "1", "--channels", "8,16",
                       "--embedding", "16", "--out", str(cv)]) == 0
    cache = load_speech_cache(small_cache)
    oof = out_of_fold_speech(cv, cache)
    (fold,) = oof.folds
    tested = np.isin(cache.window_actors, [1, 2])
    assert fold["fold"] == 0 and fold["test_actors"] == [1, 2, 3, 4, 5, 6] and fold["temperature"] > 0
    assert (oof.fold_of_window[tested] == 0).all() and (oof.fold_of_window[~tested] == -1).all()
    np.testing.assert_allclose(oof.posteriors[tested].sum(axis=1), 1.0, atol=1e-6)
    assert np.isnan(oof.posteriors[~tested]).all()
