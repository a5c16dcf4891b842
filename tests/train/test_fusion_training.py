"""Model-level fusion head: its layers, class-matched pairs that never leak a test actor or a face split,
the speech CV fold loader, and a smoke ``emotion-train fusion`` run on real RAVDESS windows and FER2013 faces."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_encoders import face_encoder, speech_encoder

from edge.errors import InputError, ModelFileError
from edge.sidecar import file_sha256
from edge.taxonomy import EMOTIONS, FER2013_FOLDERS, RAVDESS_LABELS
from train.cli.speech_bench import add_speech_command
from train.cli.train import main as train_main
from train.data.feature_cache import SpeechCacheSpec, build_cache, load_speech_cache
from train.data.image_folder import index_image_folder
from train.data.ravdess import actor_folds, index_ravdess
from train.fusion.data import (
    class_matched_pairs,
    load_face_encoder,
    load_speech_encoder,
    plan_pairs,
    to_emotion_ids,
)
from train.fusion.training import fer_split, load_fusion_head
from train.networks.fusion_head import FusionHead
from train.networks.layers import count_weight_layers
from train.speech.benchmark import load_fold_model
from train.trainer import predict

ACTORS = (1, 2, 7, 8, 9, 10)          # fold 0 tests 1 and 2
FIT_ACTORS, VALIDATION_ACTORS = (7, 8, 9), (10,)


@pytest.fixture(scope="module")
def small_cache(ravdess_speech_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real speech cache: calm, happy and angry takes (normal intensity, repetition 1) of six actors."""
    takes = [t for t in index_ravdess(ravdess_speech_dir).takes
             if t.actor in ACTORS and t.repetition == 1 and t.intensity == 1 and t.emotion in (2, 3, 5)]
    return build_cache(takes, SpeechCacheSpec(), tmp_path_factory.mktemp("cache"), ravdess_speech_dir, workers=2,
                       progress=False).directory


@pytest.fixture(scope="module")
def small_fer(fer2013_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A FER2013-layout folder with eight real train images per class (train/<class>/*.jpg)."""
    root = tmp_path_factory.mktemp("fer")
    index = index_image_folder(fer2013_dir / "train")
    for label, folder in enumerate(FER2013_FOLDERS):
        target = root / "train" / folder
        target.mkdir(parents=True)
        canonical = EMOTIONS.index({"fear": "fearful", "surprise": "surprised"}.get(folder, folder))
        for path in [p for p, lab in zip(index.paths, index.label_ids, strict=True) if lab == canonical][:8]:
            shutil.copy(path, target / path.name)
        assert len(list(target.iterdir())) == 8, label
    return root


def test_fusion_head_is_one_fc_over_the_concatenated_embeddings() -> None:
    head = FusionHead(speech_dim=128, face_dim=256).eval()
    assert count_weight_layers(head) == 1 < 10
    speech, face = torch.randn(5, 128), torch.randn(5, 256)
    logits = head.fuse(speech, face)
    assert logits.shape == (5, len(EMOTIONS)) and head.config()["labels"] == list(EMOTIONS)
    torch.testing.assert_close(logits, head(torch.cat([speech, face], dim=1)))
    rebuilt = FusionHead(**head.config())
    rebuilt.load_state_dict(head.state_dict())
    torch.testing.assert_close(rebuilt.eval()(torch.cat([speech, face], 1)), logits)
    with pytest.raises(ValueError, match="concatenated embeddings"):
        head(torch.randn(5, 128))


def test_fusion_head_standardisation_does_not_blow_up_a_dead_embedding_unit() -> None:
    pairs = torch.randn(200, 6) * torch.tensor([1.0, 50.0, 0.01, 3.0, 1.0, 1.0])
    pairs[:, 4] = 0.0                                   # a ReLU unit never active on the training pairs
    head = FusionHead(speech_dim=3, face_dim=3)
    head.fit_standardisation(pairs)
    standardised = head.standardise(pairs)
    torch.testing.assert_close(standardised[:, [0, 1, 3]].std(dim=0), torch.ones(3), atol=1e-4, rtol=0)
    moved = head.standardise(torch.ones(1, 6))[0, 4]   # the dead unit moves on new data
    assert abs(float(moved)) < 20


def test_class_matched_pairs_only_pair_items_of_the_same_class() -> None:
    speech_labels = np.array([0, 0, 1, 2, 2, 2, 5])
    face_labels = np.array([2, 0, 1, 2, 5, 0, 2, 1, 0])
    speech_idx, face_idx = class_matched_pairs(speech_labels, face_labels, 4, np.random.default_rng(0))
    np.testing.assert_array_equal(speech_labels[speech_idx], face_labels[face_idx])
    np.testing.assert_array_equal(np.bincount(speech_idx), [4] * len(speech_labels))   # k faces per window
    again = class_matched_pairs(speech_labels, face_labels, 4, np.random.default_rng(0))
    np.testing.assert_array_equal(again[1], face_idx)                                   # seeded
    with pytest.raises(InputError, match="no face of class 'fearful'"):
        class_matched_pairs(np.array([4]), face_labels, 2, np.random.default_rng(0))


def test_calm_maps_to_neutral_for_pairing() -> None:
    assert [EMOTIONS[i] for i in to_emotion_ids(range(8))] == [
        "neutral", "neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


@pytest.mark.shared_data
def test_pairs_use_only_the_given_actors_and_face_split(small_cache: Path) -> None:
    cache = load_speech_cache(small_cache)
    fold0 = actor_folds(4)[0]
    face_labels = np.repeat(np.arange(len(EMOTIONS)), 5)
    pairs = plan_pairs(cache, FIT_ACTORS, face_labels, "fit", per_window=3, seed=0)
    actors = set(cache.window_actors[pairs.windows].tolist())
    assert actors == set(FIT_ACTORS) and not actors & set(fold0.test_actors)      # no test actor leaks in
    assert len(pairs) == 3 * int(np.isin(cache.window_actors, FIT_ACTORS).sum())
    np.testing.assert_array_equal(pairs.labels, face_labels[pairs.faces])         # same class on both sides
    np.testing.assert_array_equal(pairs.labels, to_emotion_ids(cache.window_labels[pairs.windows]))
    calm = cache.window_labels[pairs.windows] == RAVDESS_LABELS.index("calm")
    assert calm.any() and (face_labels[pairs.faces[calm]] == EMOTIONS.index("neutral")).all()
    assert pairs.face_split == "fit" and pairs.describe()["speech_actors"] == list(FIT_ACTORS)


@pytest.mark.shared_data
def test_smoke_fusion_training_loss_falls_and_writes_a_loadable_head(small_cache: Path, small_fer: Path,
                                                                     tmp_path: Path) -> None:
    torch.set_num_threads(1)
    cache = load_speech_cache(small_cache)
    speech = speech_encoder(tmp_path / "speech" / "speech_cnn.pt", FIT_ACTORS, VALIDATION_ACTORS,
                            cache_params_hash=cache.manifest["params_hash"])
    face = face_encoder(tmp_path / "face" / "face_cnn.pt", small_fer / "train", fit_images=42, validation_images=14)
    out = tmp_path / "head"
    command = ["fusion", "--speech-model", str(speech), "--face-model", str(face), "--speech-cache", str(small_cache),
               "--fer", str(small_fer), "--faces-per-window", "4", "--epochs", "6", "--lr", "0.01",
               "--batch-size", "32", "--out", str(out)]
    assert train_main(command) == 0
    losses = [json.loads(line)["loss"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(losses) == 6 and losses[-1] < losses[0]

    head, meta = load_fusion_head(out / "fusion_head.pt")
    assert head.config() == {"speech_dim": 16, "face_dim": 32, "labels": list(EMOTIONS), "dropout": 0.3}
    assert meta["weight_layers"] == 1 and meta["labels"] == list(EMOTIONS)
    assert meta["encoders"]["speech"]["sha256"] == file_sha256(speech)
    assert meta["encoders"]["face"]["sha256"] == file_sha256(face)
    assert meta["encoders"]["speech"]["embedding_size"] == 16 and meta["encoders"]["face"]["embedding_size"] == 32
    training = meta["training"]
    assert training["train_pairs"]["speech_actors"] == list(FIT_ACTORS)
    assert training["train_pairs"]["face_split"] == "fit" and training["validation_pairs"]["face_split"] == "validation"
    assert training["validation_pairs"]["speech_actors"] == list(VALIDATION_ACTORS)
    assert training["validation_pairs"]["faces"] <= 14                # FER validation images only
    assert set(training["validation_accuracy"]) == {"speech", "face", "decision", "decision_confidence", "model"}
    assert json.loads((out / "config.json").read_text())["model_config"] == head.config()
    x = torch.randn(4, 48)
    np.testing.assert_allclose(predict(head, x).sum(axis=1), 1.0, atol=1e-6)

    other = face_encoder(tmp_path / "other" / "face_cnn.pt", small_fer / "train", fit_images=40, validation_images=16)
    with pytest.raises(InputError, match="not the same data"):           # a different FER split is refused
        fer_split(small_fer, load_face_encoder(other))


@pytest.mark.shared_data
def test_fold_checkpoint_rebuilds_the_cv_fold_model(small_cache: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser()
    add_speech_command(parser.add_subparsers(dest="command"))
    out = tmp_path / "cv"
    args = parser.parse_args(["speech", "--cache", str(small_cache), "--folds", "0", "--epochs", "1",
                              "--channels", "8,16", "--embedding", "16", "--out", str(out)])
    assert args.run(args) == 0
    model, meta = load_fold_model(out / "fold0" / "checkpoint.pt")
    assert meta["training"]["test_actors"] == [1, 2, 3, 4, 5, 6]
    assert not set(meta["training"]["fit_actors"] + meta["training"]["validation_actors"]) & {1, 2, 3, 4, 5, 6}
    assert meta["labels"] == list(RAVDESS_LABELS) and meta["features"]["mfcc"]["window_s"] == 1.0
    saved = np.load(out / "fold0" / "test_posteriors.npz")
    cache = load_speech_cache(small_cache)
    test = torch.from_numpy(cache.windows[np.isin(cache.window_actors, [1, 2, 3, 4, 5, 6])])
    np.testing.assert_allclose(predict(model, test), saved["posteriors"], atol=1e-5)   # the benchmark's model
    encoder = load_speech_encoder(out / "fold0" / "checkpoint.pt")                       # CLI paths take folds too
    assert encoder.actors_seen() == set(meta["training"]["fit_actors"] + meta["training"]["validation_actors"])

    (out / "results.json").unlink()
    with pytest.raises(ModelFileError, match="not a speech model"):
        load_speech_encoder(out / "fold0" / "checkpoint.pt")
    with pytest.raises(ModelFileError, match="not a fold checkpoint"):
        load_fold_model(out / "fold0" / "checkpoint.pt")
