"""Decision-level fusion onto the 7-class taxonomy, and the rule choosing between it and a fusion head."""

from __future__ import annotations

import numpy as np
import pytest

from edge.fusion.decision import confidence_weight, decision_fusion, fuse, to_emotions
from edge.taxonomy import EMOTIONS, RAVDESS_LABELS


def test_calm_adds_to_neutral_when_mapping_ravdess_posteriors() -> None:
    posterior = np.zeros(len(RAVDESS_LABELS))
    posterior[RAVDESS_LABELS.index("calm")] = 0.6
    posterior[RAVDESS_LABELS.index("neutral")] = 0.1
    posterior[RAVDESS_LABELS.index("happy")] = 0.3
    mapped = to_emotions(posterior, RAVDESS_LABELS)
    assert mapped.shape == (len(EMOTIONS),)
    assert mapped[EMOTIONS.index("neutral")] == pytest.approx(0.7)
    assert mapped.sum() == pytest.approx(1.0)


def test_one_modality_is_returned_unchanged_and_agreement_sharpens() -> None:
    speech = np.array([0.1, 0.5, 0.1, 0.1, 0.1, 0.05, 0.05])
    assert decision_fusion({"speech": speech}, {"speech": 1.0}) == pytest.approx(speech)
    fused = decision_fusion({"speech": speech, "face": speech}, {"speech": 1.0, "face": 1.0})
    assert fused.argmax() == 1 and fused[1] > speech[1] and fused.sum() == pytest.approx(1.0)


def test_weights_decide_between_disagreeing_modalities() -> None:
    speech = np.array([0.05, 0.7, 0.05, 0.05, 0.05, 0.05, 0.05])
    face = np.array([0.05, 0.05, 0.7, 0.05, 0.05, 0.05, 0.05])
    assert decision_fusion({"speech": speech, "face": face}, {"speech": 2.0, "face": 1.0}).argmax() == 1
    assert decision_fusion({"speech": speech, "face": face}, {"speech": 1.0, "face": 2.0}).argmax() == 2


def test_confidence_weight_is_one_for_a_sure_posterior_and_zero_for_a_flat_one() -> None:
    sure, flat = np.eye(7)[2], np.full(7, 1 / 7)
    assert confidence_weight(sure) == pytest.approx([1.0], abs=1e-4)
    assert confidence_weight(flat) == pytest.approx([0.0], abs=1e-9)
    batch = confidence_weight(np.stack([sure, flat, to_emotions(np.full(8, 1 / 8), RAVDESS_LABELS)]))
    assert batch.shape == (3, 1) and batch[0, 0] > batch[2, 0] > batch[1, 0]   # calm+neutral make it less flat


def test_by_confidence_a_sure_modality_outweighs_an_unsure_one_per_input() -> None:
    sure_speech = np.array([0.02, 0.88, 0.02, 0.02, 0.02, 0.02, 0.02])
    unsure_face = np.array([0.1, 0.1, 0.4, 0.1, 0.1, 0.1, 0.1])
    both = {"speech": sure_speech, "face": unsure_face}
    weights = {"speech": 1.0, "face": 3.0}
    assert decision_fusion(both, weights).argmax() == 2                        # fixed weights: the face wins
    assert decision_fusion(both, weights, by_confidence=True).argmax() == 1    # the unsure face counts less
    batch = decision_fusion({"speech": np.stack([sure_speech, unsure_face]), "face": np.stack([unsure_face,
                            sure_speech])}, weights, by_confidence=True)
    assert batch.argmax(axis=1).tolist() == [1, 1]                              # each row its own weights
    fused, method = fuse(both, weights, by_confidence=True)
    assert method == "decision" and fused.argmax() == 1


def test_missing_weight_or_no_modality_is_an_error() -> None:
    with pytest.raises(ValueError, match="no fusion weight"):
        decision_fusion({"face": np.full(7, 1 / 7)}, {"speech": 1.0})
    with pytest.raises(ValueError, match="at least one"):
        decision_fusion({}, {})


class StubHead:
    """Stands in for a fusion head (the real ONNX ones are in test_pipeline.py and test_fusion_export.py)."""

    def posterior(self, speech: np.ndarray, face: np.ndarray) -> np.ndarray:
        return np.eye(len(EMOTIONS))[EMOTIONS.index("surprised")]


def test_the_head_fuses_only_when_both_modalities_bring_an_embedding() -> None:
    speech, face = np.full(7, 1 / 7), np.array([0.05, 0.7, 0.05, 0.05, 0.05, 0.05, 0.05])
    both, weights = {"speech": speech, "face": face}, {"speech": 1.0, "face": 1.0}
    embeddings = {"speech": np.zeros(3), "face": np.zeros(4)}
    fused, method = fuse(both, weights, embeddings, StubHead())
    assert method == "model" and EMOTIONS[int(fused.argmax())] == "surprised"
    assert fuse(both, weights, embeddings)[1] == "decision"                                  # no head
    assert fuse(both, weights, {"speech": np.zeros(3), "face": None}, StubHead())[1] == "decision"
    fused, method = fuse({"face": face}, weights, embeddings, StubHead())
    assert method == "face_only" and fused == pytest.approx(face)
    assert fuse({"speech": speech}, weights, embeddings, StubHead())[1] == "speech_only"

