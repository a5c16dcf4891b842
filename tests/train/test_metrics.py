"""Scores, clip votes (majority with mean-posterior tie break, mean posterior) and fold summaries."""

from __future__ import annotations

import numpy as np
import pytest

from train.metrics import clip_votes, mean_std, score, vote


def test_score_accuracy_macro_f1_and_confusion() -> None:
    truth = [0, 0, 1, 1, 2, 2]
    predicted = [0, 1, 1, 1, 2, 0]
    scores = score(truth, predicted, n_classes=4)
    assert scores.accuracy == pytest.approx(4 / 6)
    assert scores.count == 6
    # rows are the truth; the absent class 3 gets an all-zero row and column
    assert scores.confusion.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    # per-class F1: 0.5, 0.8, 2/3, and 0 for the absent class 3 (averaged over all 4 classes)
    assert scores.macro_f1 == pytest.approx((0.5 + 0.8 + 2 / 3 + 0.0) / 4)
    assert scores.to_dict()["confusion"] == scores.confusion.tolist()


@pytest.mark.parametrize(("truth", "predicted"), [([0, 1], [0]), ([], [])])
def test_score_rejects_mismatched_or_empty_labels(truth: list[int], predicted: list[int]) -> None:
    with pytest.raises(ValueError, match="equal, non-empty"):
        score(truth, predicted, n_classes=2)


def test_majority_vote_counts_argmaxes_not_probability_mass() -> None:
    posteriors = np.array([[0.40, 0.60, 0.0],
                           [0.45, 0.55, 0.0],
                           [1.00, 0.00, 0.0]])
    assert vote(posteriors, "majority") == 1          # two windows say 1
    assert vote(posteriors, "mean") == 0              # mean posterior 0.617 vs 0.383


def test_majority_tie_is_broken_by_the_mean_posterior_of_the_tied_classes() -> None:
    two_way = np.array([[0.6, 0.4], [0.1, 0.9]])   # one vote each; mean 0.35 vs 0.65
    assert vote(two_way, "majority") == 1
    assert vote(two_way[::-1], "majority") == 1    # the order of the windows does not matter
    # classes 0 and 1 tie with one vote each; class 2 has no vote but the largest mean posterior
    posteriors = np.array([[0.51, 0.00, 0.49],
                           [0.00, 0.52, 0.48]])
    assert vote(posteriors, "majority") == 1      # tied 0 vs 1: mean 0.255 vs 0.26
    assert vote(posteriors, "mean") == 2          # mean 0.485


def test_vote_of_one_window_is_its_argmax() -> None:
    window = np.array([[0.1, 0.7, 0.2]])
    assert vote(window, "majority") == vote(window, "mean") == 1


def test_vote_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown vote rule"):
        vote(np.eye(3), "median")
    with pytest.raises(ValueError, match="non-empty"):
        vote(np.zeros((0, 3)), "majority")
    with pytest.raises(ValueError, match="non-empty"):
        vote(np.zeros(3), "mean")


def test_clip_votes_groups_windows_by_clip_in_first_seen_order() -> None:
    posteriors = np.array([[0.9, 0.1],   # b
                           [0.2, 0.8],   # a
                           [0.3, 0.7],   # a
                           [0.6, 0.4],   # b
                           [0.4, 0.6]])  # c
    clips = ["b", "a", "a", "b", "c"]
    majority = clip_votes(posteriors, clips, "majority")
    assert list(majority) == ["b", "a", "c"]
    assert majority == {"b": 0, "a": 1, "c": 1}
    assert clip_votes(posteriors, np.array(clips), "mean") == {"b": 0, "a": 1, "c": 1}


def test_clip_votes_can_differ_between_rules() -> None:
    posteriors = np.array([[0.55, 0.45], [0.55, 0.45], [0.0, 1.0]])
    assert clip_votes(posteriors, ["x"] * 3, "majority") == {"x": 0}
    assert clip_votes(posteriors, ["x"] * 3, "mean") == {"x": 1}


def test_mean_std_is_the_population_std_over_folds() -> None:
    mean, std = mean_std([0.5, 0.7, 0.6, 0.6])
    assert mean == pytest.approx(0.6)
    assert std == pytest.approx(np.sqrt(0.02 / 4))
