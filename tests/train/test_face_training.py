"""The face CNN, its augmentation, penalty and validation split, a smoke training run on real FER2013
images (loss falls, checkpoints resume, the saved model reloads), and the RAVDESS clip scoring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
import torch.nn.functional as F
from numerics import assert_matches_signal

from edge.errors import ModelFileError
from edge.taxonomy import EMOTIONS, RAVDESS_LABELS
from train.data.feature_cache import AvCache, AvClipFeatures
from train.data.image_folder import ImageFolderIndex, index_image_folder, load_images
from train.face.benchmark import clip_truth, evaluate_clips
from train.face.training import (
    FaceAugment,
    FaceData,
    FaceRecipe,
    FcPenalty,
    load_face_model,
    save_face_model,
    train_face_model,
    validation_split,
)
from train.metrics import vote
from train.networks.face_cnn import FaceCNN, pixels
from train.networks.layers import count_weight_layers
from train.trainer import TrainConfig, predict


@pytest.fixture(scope="module")
def fer_sample(fer2013_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Eight real FER2013 train images per class (56), gray uint8, EMOTIONS label ids."""
    index = index_image_folder(fer2013_dir / "train")
    picked: list[int] = []
    for label in range(len(EMOTIONS)):
        picked += [i for i, lab in enumerate(index.label_ids) if lab == label][:8]
    small = ImageFolderIndex(root=index.root, labels=index.labels, paths=[index.paths[i] for i in picked],
                             label_ids=[index.label_ids[i] for i in picked])
    loaded = load_images(small, progress=False)
    return loaded.images, loaded.label_ids


@pytest.mark.parametrize("width", [8, 32])
def test_weight_layers_stay_under_ten(width: int) -> None:
    model = FaceCNN(width=width)
    assert count_weight_layers(model, exclude=[model.localisation]) == 8  # 6 conv + 2 fc
    assert count_weight_layers(model.localisation) == 4  # 2 conv + 2 fc
    assert count_weight_layers(model) == 12


def test_spatial_transformer_starts_as_identity() -> None:
    model = FaceCNN(width=8).eval()
    x = torch.randn(3, 1, 48, 48)
    torch.testing.assert_close(model.transform(x), x, atol=1e-4, rtol=0)


def test_sampling_grid_is_affine_grid() -> None:
    model = FaceCNN(width=8)
    theta = torch.randn(4, 2, 3)
    grid = (model.base_grid @ theta.transpose(1, 2)).view(4, 48, 48, 2)
    torch.testing.assert_close(grid, F.affine_grid(theta, [4, 1, 48, 48], align_corners=False), atol=1e-5, rtol=0)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the legacy exporter warns about itself
def test_exports_to_onnx_opset_17(tmp_path: Path) -> None:
    """The transformer's grid is a MatMul, so opsets without AffineGrid (TensorRT 8.x era) work."""
    model = FaceCNN(width=8).eval()
    x = torch.rand(3, 1, 48, 48) * 255
    torch.onnx.export(model, (x,), str(tmp_path / "face.onnx"), opset_version=17, input_names=["pixels"],
                      dynamic_axes={"pixels": {0: "batch"}}, dynamo=False)
    session = onnxruntime.InferenceSession(str(tmp_path / "face.onnx"))
    assert_matches_signal(session.run(None, {"pixels": x.numpy()})[0], model(x).detach().numpy())


def test_shapes_config_and_standardisation() -> None:
    model = FaceCNN(width=8, fc_units=64).eval()
    x = pixels(np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8))
    assert x.shape == (5, 1, 48, 48) and x.dtype == torch.float32 and float(x.max()) > 1
    assert model(x).shape == (5, len(EMOTIONS))
    assert model.embed(x).shape == (5, 64)
    rebuilt = FaceCNN(**model.config())
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt.eval()(x), model(x))
    grey = torch.full((1, 1, 48, 48), 255 * model.config()["pixel_mean"])
    assert float(model.standardise(grey).abs().max()) < 1e-4
    with pytest.raises(ValueError, match="crop_size"):
        FaceCNN(crop_size=50)
    with pytest.raises(ValueError, match="gray crops"):
        pixels(np.zeros((48, 48), dtype=np.uint8))


def test_augment_without_magnitude_only_flips() -> None:
    x = torch.rand(16, 1, 48, 48) * 255
    still = FaceAugment(flip=False, rotation=0, scale=0, shift=0, brightness=0, contrast=0)
    torch.testing.assert_close(still(x, torch.Generator().manual_seed(0)), x, atol=1e-3, rtol=0)
    flips = FaceAugment(rotation=0, scale=0, shift=0, brightness=0, contrast=0)(x, torch.Generator().manual_seed(0))
    same = (flips - x).abs().amax(dim=(1, 2, 3)) < 1e-3
    mirrored = (flips - x.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-3
    assert bool((same | mirrored).all()) and 0 < int(mirrored.sum()) < 16


def test_augment_is_seeded_and_stays_in_pixel_range() -> None:
    x = torch.rand(8, 1, 48, 48) * 255
    augment = FaceAugment()
    a = augment(x, torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, augment(x, torch.Generator().manual_seed(1)))
    assert a.shape == x.shape and float(a.min()) >= 0 and float(a.max()) <= 255
    assert float((a - x).abs().mean()) > 1  # it did change the images


def test_fc_penalty_is_lambda_times_squared_fc_weights() -> None:
    model = FaceCNN(width=8)
    expected = model.fc1.weight.pow(2).sum() + model.fc2.weight.pow(2).sum()
    torch.testing.assert_close(FcPenalty(0.01)(model), 0.01 * expected)
    with pytest.raises(TypeError, match="FaceCNN"):
        FcPenalty(0.01)(torch.nn.Linear(2, 2))


def test_validation_split_is_stratified_disjoint_and_seeded() -> None:
    labels = np.repeat(np.arange(7), [400, 40, 300, 300, 300, 300, 200])
    fit_idx, val_idx = validation_split(labels, 0.1, seed=3)
    assert not set(fit_idx) & set(val_idx) and len(fit_idx) + len(val_idx) == len(labels)
    np.testing.assert_array_equal(np.bincount(labels[val_idx]), [40, 4, 30, 30, 30, 30, 20])
    np.testing.assert_array_equal(validation_split(labels, 0.1, seed=3)[1], val_idx)
    assert not np.array_equal(validation_split(labels, 0.1, seed=4)[1], val_idx)


@pytest.mark.shared_data
def test_smoke_training_resumes_and_reloads(fer_sample: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    torch.set_num_threads(1)
    images, labels = fer_sample
    fit_idx, val_idx = validation_split(labels, 0.25, seed=0)
    train, val = (images[fit_idx], labels[fit_idx]), (images[val_idx], labels[val_idx])

    def recipe(epochs: int) -> FaceRecipe:
        return FaceRecipe(model_config={"width": 8, "fc_units": 32}, config=TrainConfig(epochs=epochs, batch_size=8),
                          penalty=1e-3, augment=None, finetune_epochs=1)

    first = train_face_model(train, val, recipe(2), out=tmp_path)
    assert (tmp_path / "checkpoint_stage1.pt").is_file() and (tmp_path / "checkpoint_finetune.pt").is_file()
    (tmp_path / "checkpoint_finetune.pt").unlink()
    resumed = train_face_model(train, val, recipe(4), out=tmp_path)
    history = resumed.stages[0].history
    assert len(history) == 4 and history[:2] == first.stages[0].history  # epochs 0-1 were not rerun
    assert first.epochs_now == 3 and resumed.epochs_now == 3  # stage 1 epochs 2-3 + the fine-tune epoch
    assert history[-1]["loss"] < history[0]["loss"]

    data = FaceData(train[0], train[1], val[0], val[1], tmp_path)
    path = save_face_model(tmp_path / "model", resumed, data, recipe(4), 0.25)
    model, meta = load_face_model(path)
    assert meta["labels"] == list(EMOTIONS) and meta["weight_layers"] == 8 and meta["stn_weight_layers"] == 4
    np.testing.assert_allclose(predict(model, pixels(val[0])), predict(resumed.model, pixels(val[0])), atol=1e-5)


def test_load_face_model_rejects_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no such"):
        load_face_model(tmp_path / "absent.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="other.pt"):
        load_face_model(tmp_path / "other.pt")


def test_ravdess_labels_map_onto_the_face_labels() -> None:
    assert clip_truth(RAVDESS_LABELS.index("calm"), EMOTIONS) == EMOTIONS.index("neutral")
    assert [EMOTIONS[clip_truth(i, EMOTIONS)] for i in range(8)] == [
        "neutral", "neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


@pytest.mark.shared_data
def test_clip_votes_use_the_key_faces(fer_sample: tuple[np.ndarray, np.ndarray]) -> None:
    images = fer_sample[0]
    clip = AvClipFeatures(take_id="01-01-02-01-01-01-05", actor=5, label_id=RAVDESS_LABELS.index("calm"),
                          crops=images[:20], pts=np.arange(20) / 30, key_faces=np.array([3, 9, 15]), frames=20,
                          frames_without_face=0, windows=np.zeros((1, 3, 99, 40), np.float32),
                          window_starts=np.zeros(1))
    model = FaceCNN(width=8).eval()
    (row,) = evaluate_clips(lambda crops: predict(model, pixels(crops)),
                            AvCache(directory=Path("."), manifest={}, clips=[clip]), EMOTIONS)
    posteriors = predict(model, pixels(images[:20]))
    assert row["truth"] == "neutral" and row["faces"] == 20 and row["key_faces"] == 3
    assert row["key_majority_id"] == vote(posteriors[[3, 9, 15]], "majority")
    assert row["all_mean_id"] == vote(posteriors, "mean")
    assert row["frame_correct"] == int((posteriors.argmax(1) == EMOTIONS.index("neutral")).sum())
