"""EMA + hysteresis smoothing: converges on a steady input, never flickers under alternating noisy input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.config.schema import SmoothingConfig
from edge.fusion.smoothing import EmotionSmoother

N = 7


def probability_vectors(n: int = N) -> st.SearchStrategy[np.ndarray]:
    weights = st.lists(st.floats(0.01, 1.0), min_size=n, max_size=n)
    return weights.map(lambda w: np.array(w) / np.sum(w))


params_strategy = st.builds(
    SmoothingConfig,
    ema_alpha=st.floats(0.05, 1.0),
    hysteresis=st.floats(0.0, 0.5),
    hold=st.integers(1, 5),
)


def labels_for(smoother: EmotionSmoother, inputs: list[np.ndarray]) -> list[int]:
    return [smoother.update(p).label for p in inputs]


def test_the_first_update_sets_the_label_and_reports_a_change() -> None:
    smoother = EmotionSmoother(SmoothingConfig())
    assert smoother.label is None
    first = smoother.update(np.eye(N)[3])
    assert first.label == 3 and first.changed and first.confidence == 1.0


def test_the_ema_follows_its_formula() -> None:
    smoother = EmotionSmoother(SmoothingConfig(ema_alpha=0.25, hysteresis=0.0, hold=1))
    a, b = np.eye(N)[0], np.eye(N)[1]
    smoother.update(a)
    np.testing.assert_allclose(smoother.update(b).posterior, 0.25 * b + 0.75 * a)


def test_a_switch_needs_the_margin_for_hold_consecutive_updates() -> None:
    smoother = EmotionSmoother(SmoothingConfig(ema_alpha=1.0, hysteresis=0.2, hold=3))
    smoother.update(np.eye(N)[0])
    close = np.array([0.35, 0.45, 0.2, 0, 0, 0, 0])  # label 1 leads, but by less than the margin
    clear = np.array([0.1, 0.8, 0.1, 0, 0, 0, 0])
    assert labels_for(smoother, [close] * 5) == [0] * 5
    assert labels_for(smoother, [clear, clear, close, clear, clear]) == [0] * 5  # streak broken by `close`
    results = [smoother.update(clear) for _ in range(2)]  # the third clear in a row switches
    assert [r.label for r in results] == [1, 1] and [r.changed for r in results] == [True, False]


def test_below_min_confidence_the_result_is_uncertain_with_hysteresis() -> None:
    smoother = EmotionSmoother(SmoothingConfig(ema_alpha=1.0, hysteresis=0.1, hold=1, min_confidence=0.5))

    def leading(p: float) -> np.ndarray:
        return np.array([p, *[(1 - p) / (N - 1)] * (N - 1)])

    steps = [smoother.update(leading(p)) for p in (0.3, 0.55, 0.45, 0.35, 0.45, 0.5)]
    assert [s.certain for s in steps] == [False, True, True, False, False, True]   # drops only below 0.4
    assert [s.changed for s in steps] == [True, True, False, True, False, True]    # each flip is a change
    assert [s.name(("neutral",) * N) for s in steps[2:4]] == ["neutral", "uncertain"]
    assert all(s.label == 0 for s in steps)                                         # the leader is kept
    never = EmotionSmoother(SmoothingConfig())                                      # min_confidence 0: always named
    assert all(never.update(leading(p)).certain for p in (0.15, 0.2, 0.9))


def test_invalid_parameters_are_refused() -> None:
    for bad in ({"ema_alpha": 0.0}, {"ema_alpha": 1.5}, {"hysteresis": -0.1}, {"hold": 0}, {"min_confidence": 1.5}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            SmoothingConfig(**bad)
    smoother = EmotionSmoother(SmoothingConfig())
    smoother.update(np.eye(N)[0])
    with pytest.raises(ValueError, match="shape"):
        smoother.update(np.ones(8) / 8)


@settings(max_examples=100, deadline=None)
@given(params=params_strategy, start=probability_vectors(), steady=probability_vectors())
def test_converges_on_a_steady_input(params: SmoothingConfig, start: np.ndarray, steady: np.ndarray) -> None:
    """After any start, a steady input whose winner leads by more than the margin ends up reported."""
    top, second = np.sort(steady)[::-1][:2]
    if top - second <= params.hysteresis + 1e-3:
        return  # no clear winner beyond the margin: nothing to converge to
    smoother = EmotionSmoother(params)
    smoother.update(start)
    labels = labels_for(smoother, [steady] * 400)
    assert labels[-1] == int(np.argmax(steady))
    assert labels[-params.hold :] == [labels[-1]] * params.hold


@settings(max_examples=200, deadline=None)
@given(
    params=st.builds(SmoothingConfig, ema_alpha=st.floats(0.05, 1.0), hysteresis=st.floats(0.0, 0.5),
                     hold=st.integers(2, 5)),
    a=probability_vectors(),
    b=probability_vectors(),
    length=st.integers(2, 120),
)
def test_no_flicker_under_alternating_inputs(
    params: SmoothingConfig, a: np.ndarray, b: np.ndarray, length: int
) -> None:
    """Two posteriors alternating (noise around a mean) never make the label go back to an earlier one.

    With hold >= 2 a switch needs the margin in both phases of the alternation, and each phase's
    smoothed posterior moves monotonically towards its limit, so a label once left is never taken again.
    """
    smoother = EmotionSmoother(params)
    labels = labels_for(smoother, [a if k % 2 == 0 else b for k in range(length)])
    runs = [label for k, label in enumerate(labels) if k == 0 or label != labels[k - 1]]
    assert len(runs) == len(set(runs)), f"label sequence went back: {runs}"


@settings(max_examples=100, deadline=None)
@given(params=params_strategy, inputs=st.lists(probability_vectors(), min_size=1, max_size=60))
def test_switches_are_at_least_hold_updates_apart(params: SmoothingConfig, inputs: list[np.ndarray]) -> None:
    smoother = EmotionSmoother(params)
    changes = [k for k, p in enumerate(inputs) if smoother.update(p).changed]
    assert changes[0] == 0
    assert all(later - earlier >= params.hold for earlier, later in zip(changes, changes[1:], strict=False))
