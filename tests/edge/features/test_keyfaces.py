"""Key-face selection (sliding-window medoids), offline and streaming, checked by brute force."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edge.errors import InputError
from edge.features.keyfaces import KeyFaceSelector, key_face_indices, medoid, window_bounds

crop_stacks = st.integers(0, 30).flatmap(lambda n: arrays(np.uint8, (n, 3, 4), elements=st.integers(0, 255)))
radii = st.integers(1, 5)


def _brute_force_totals(crops: np.ndarray, start: int, end: int) -> list[float]:
    flat = [crops[i].astype(np.float64).ravel() for i in range(start, end)]
    return [sum(float(np.sqrt(np.sum((a - b) ** 2))) for b in flat) for a in flat]


def _stream(crops: np.ndarray, radius: int) -> tuple[list[int], int | None]:
    selector = KeyFaceSelector(radius)
    pushed = [index for crop in crops if (index := selector.push(crop)) is not None]
    return pushed, selector.finish()


def _expected_window_count(n: int, radius: int) -> int:
    size = 2 * radius + 1
    if n == 0:
        return 0
    return 1 if n <= size else 1 + math.ceil((n - size) / radius)


@settings(max_examples=150, deadline=None)
@given(crops=crop_stacks, radius=radii)
def test_indices_are_window_medoids(crops: np.ndarray, radius: int) -> None:
    indices = key_face_indices(crops, radius)
    bounds = window_bounds(len(crops), radius)
    assert all(0 <= i < len(crops) for i in indices)
    assert all(a < b for a, b in pairwise(indices))
    assert len(bounds) == _expected_window_count(len(crops), radius)
    assert len(indices) <= len(bounds)
    # Every window yields one of the indices, which is a brute-force medoid of that window.
    covered = set()
    for start, end in bounds:
        totals = _brute_force_totals(crops, start, end)
        best = min(totals)
        chosen = [i for i in indices if start <= i < end and totals[i - start] <= best * (1 + 1e-5) + 1e-3]
        assert chosen, (start, end)
        covered.update(chosen)
    assert covered == set(indices)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 200), radius=radii)
def test_windows_tile_the_sequence(n: int, radius: int) -> None:
    bounds = window_bounds(n, radius)
    size = 2 * radius + 1
    if n == 0:
        assert bounds == []
        return
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(end - start == min(n, size) for start, end in bounds)
    # Consecutive windows overlap or touch, so every face lies in some window.
    assert all(b_start <= a_end for (_, a_end), (b_start, _) in pairwise(bounds))
    assert all(b_start - a_start <= radius for (a_start, _), (b_start, _) in pairwise(bounds))


@settings(max_examples=150, deadline=None)
@given(crops=crop_stacks, radius=radii)
def test_streaming_gives_the_offline_indices(crops: np.ndarray, radius: int) -> None:
    pushed, last = _stream(crops, radius)
    # The sliding windows proper (a tail window is the only one not starting at a multiple of r).
    full_windows = [
        (s, e) for s, e in window_bounds(len(crops), radius) if e - s == 2 * radius + 1 and s % radius == 0
    ]
    flat = crops.reshape(len(crops), 3 * 4).astype(np.float32)
    assert len(pushed) == len(set(pushed))
    assert set(pushed) == {start + medoid(flat[start:end]) for start, end in full_windows}
    streamed = set(pushed) | ({last} if last is not None else set())
    assert sorted(streamed) == key_face_indices(crops, radius)


def test_identical_crops_choose_the_first_of_each_window() -> None:
    crops = np.zeros((7, 4, 4), np.uint8)
    assert window_bounds(7, 1) == [(0, 3), (1, 4), (2, 5), (3, 6), (4, 7)]
    assert key_face_indices(crops, 1) == [0, 1, 2, 3, 4]
    assert key_face_indices(crops, 3) == [0]
    assert key_face_indices(crops[:5], 3) == [0]


def test_outliers_are_never_key_faces() -> None:
    values = [10, 11, 250, 12, 10, 0, 11, 12, 11, 240, 10]
    crops = [np.full((2, 2), v, np.uint8) for v in values]
    indices = key_face_indices(crops, 2)
    assert indices and not {2, 5, 9} & set(indices)


def test_tail_window_ends_at_the_last_face() -> None:
    assert window_bounds(10, 2) == [(0, 5), (2, 7), (4, 9), (5, 10)]
    assert window_bounds(9, 2) == [(0, 5), (2, 7), (4, 9)]
    assert window_bounds(3, 2) == [(0, 3)]


def test_empty_and_bad_input() -> None:
    assert key_face_indices([], 2) == []
    assert KeyFaceSelector(2).finish() is None
    with pytest.raises(ValueError, match="radius"):
        key_face_indices([np.zeros((2, 2))], 0)
    with pytest.raises(ValueError, match="radius"):
        KeyFaceSelector(0)
    with pytest.raises(InputError, match="shape"):
        key_face_indices([np.zeros((2, 2)), np.zeros((3, 3))], 1)
    selector = KeyFaceSelector(1)
    selector.push(np.zeros((2, 2)))
    with pytest.raises(InputError, match="shape"):
        selector.push(np.zeros((3, 3)))
