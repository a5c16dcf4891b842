"""Speech CNN: weight-layer count, SpecAugment masks, actor splits, a real smoke training run that
resumes and reloads, and the benchmark's end-to-end outputs on a small real RAVDESS cache."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import python_speech_features as psf
import torch
from torch import nn

from edge.errors import InputError, ModelFileError
from edge.features.audio import load_audio
from train.cli.options import add_device_option
from train.cli.speech_bench import add_speech_command as add_bench_command
from train.data.feature_cache import load_speech_cache
from train.data.ravdess import actor_folds
from train.networks.layers import Standardise, count_weight_layers
from train.networks.speech_cnn import SpeechCNN, cepstrum_to_log_mel
from train.reports import format_table, save_confusion_png
from train.speech.benchmark import summarise
from train.speech.training import (
    SpecAugment,
    load_speech_model,
    save_speech_model,
    train_speech_model,
    validation_split,
)
from train.trainer import TrainConfig, mixup, predict, training_seconds

TINY_MODEL = {"channels": (8, 16), "embedding": 16, "dropout": 0.1}




def test_default_speech_cnn_has_six_weight_layers_and_the_contract_methods() -> None:
    model = SpeechCNN()
    assert count_weight_layers(model) == 6 < 10
    model.eval()
    x = torch.randn(5, 3, 99, 40)
    assert model(x).shape == (5, 8)
    assert model.embed(x).shape == (5, model.config()["embedding"])
    rebuilt = SpeechCNN(**model.config())
    assert [type(m) for m in rebuilt.modules()] == [type(m) for m in model.modules()]
    assert count_weight_layers(SpeechCNN(channels=(8, 8, 8, 8, 8, 8, 8))) == 9


def test_count_weight_layers_counts_conv_and_linear_and_leaves_out_excluded_branches() -> None:
    branch = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Linear(4, 6))
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Conv1d(2, 2, 1), nn.Dropout(),
                          nn.Linear(2, 3), branch)
    assert count_weight_layers(model) == 5
    assert count_weight_layers(model, exclude=[branch]) == 3


def test_standardise_fits_per_channel_and_coefficient_statistics() -> None:
    generator = torch.Generator().manual_seed(1)
    scale = torch.linspace(0.5, 20, 40)
    inputs = torch.randn(64, 3, 99, 40, generator=generator) * scale + 7.0
    layer = Standardise((3, 1, 40))
    layer.fit(inputs)
    out = layer(inputs)
    assert torch.allclose(out.mean(dim=(0, 2)), torch.zeros(3, 40), atol=1e-4)
    assert torch.allclose(out.std(dim=(0, 2)), torch.ones(3, 40), atol=1e-3)
    assert set(layer.state_dict()) == {"mean", "std"}   # saved and exported with the weights


def test_spec_augment_masks_bands_with_the_fill_value() -> None:
    image = torch.randn(32, 3, 99, 40)
    fill = torch.full((3, 1, 40), 123.0)
    spec = SpecAugment(time_masks=1, max_time=10, freq_masks=0)
    out = spec.mask(image, fill, torch.Generator().manual_seed(0))
    masked = out == 123.0
    frames = masked.all(dim=3).all(dim=1)              # (32, 99): whole masked frames
    assert torch.equal(masked, frames[:, None, :, None].expand_as(masked))
    widths = frames.sum(dim=1)
    assert widths.max() <= 10 and widths.max() > 0
    for row in frames:                                 # one contiguous band per window
        idx = torch.nonzero(row).flatten()
        assert len(idx) == 0 or idx[-1] - idx[0] + 1 == len(idx)
    assert torch.equal(out[~masked], image[~masked])
    assert torch.equal(out, spec.mask(image, fill, torch.Generator().manual_seed(0)))   # reproducible

    bands = SpecAugment(time_masks=0, freq_masks=2, max_freq=5).mask(image, fill, torch.Generator())
    masked_bands = (bands == 123.0).all(dim=2).all(dim=1)    # (32, 40): whole masked mel bands
    assert masked_bands.sum(dim=1).max() <= 10
    assert torch.equal(bands == 123.0, masked_bands[:, None, None, :].expand_as(image))


def test_spec_augment_masks_the_models_log_mel_image_and_returns_mfccs() -> None:
    model = SpeechCNN()
    x = torch.randn(16, 3, 99, 40) * 5
    model.fit_standardisation(x)
    identity = SpecAugment(time_masks=0, freq_masks=0).augment(model)(x, torch.Generator())
    torch.testing.assert_close(identity, x, atol=1e-3, rtol=1e-4)   # MFCC -> log mel -> MFCC round trip
    augmented = SpecAugment(time_masks=2, freq_masks=2).augment(model)(x, torch.Generator().manual_seed(3))
    standardised = model.standardise(model.to_log_mel(augmented))
    zero = standardised.abs() < 1e-3                   # masked cells read as the training mean
    assert zero.any() and (zero.float().mean() < 0.5)
    changed = (augmented - x).abs().amax(dim=(1, 2, 3)) > 1e-3
    assert changed.sum() >= 8


def test_cepstrum_to_log_mel_recovers_python_speech_features_filterbank(speech_flac: Path) -> None:
    signal = load_audio(speech_flac)[:16000].astype(np.float64)
    mfcc = psf.mfcc(signal, 16000, numcep=40, nfilt=40, nfft=512, ceplifter=22, appendEnergy=False,
                    winfunc=np.hamming)
    log_fbank = np.log(psf.fbank(signal, 16000, nfilt=40, nfft=512, winfunc=np.hamming)[0])
    np.testing.assert_allclose(mfcc @ cepstrum_to_log_mel(40, 40, 22), log_fbank, atol=1e-4)
    smooth = mfcc[:, :13] @ cepstrum_to_log_mel(13, 40, 22)           # fewer coefficients: a smoothed spectrum
    assert smooth.shape == log_fbank.shape
    assert np.abs(smooth - log_fbank).mean() < np.abs(log_fbank - log_fbank.mean(axis=1, keepdims=True)).mean()
    with pytest.raises(ValueError, match="coefficients <= bands"):
        cepstrum_to_log_mel(41, 40, 22)


def test_validation_split_holds_out_one_male_and_one_female_training_actor() -> None:
    for fold in actor_folds(4):
        fit_actors, val_actors = validation_split(fold.train_actors, seed=fold.index)
        assert sorted(a % 2 for a in val_actors) == [0, 1]
        assert set(fit_actors) | set(val_actors) == set(fold.train_actors)
        assert not set(fit_actors) & set(val_actors)
        assert not (set(fit_actors) | set(val_actors)) & set(fold.test_actors)   # test actors never steer
        assert validation_split(fold.train_actors, seed=fold.index) == (fit_actors, val_actors)
    with pytest.raises(InputError, match="two male and two female"):
        validation_split((1, 2, 3), seed=0)


def test_cv_folds_never_share_an_actor() -> None:
    folds = actor_folds(4)
    assert [f.test_actors for f in folds] == [tuple(range(6 * k + 1, 6 * k + 7)) for k in range(4)]
    for fold in folds:
        assert not set(fold.test_actors) & set(fold.train_actors)
        assert len(fold.train_actors) == 18
    assert sorted(a for f in folds for a in f.test_actors) == list(range(1, 25))


@pytest.mark.shared_data
def test_smoke_training_loss_falls_resumes_and_reloads(small_cache: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    cache = load_speech_cache(small_cache)
    config = TrainConfig(epochs=3, batch_size=16, lr=3e-3, seed=0)
    checkpoint = tmp_path / "checkpoint.pt"
    trained = train_speech_model(cache, (7, 8, 9, 10), TINY_MODEL, config, augment=None, checkpoint=checkpoint,
                                 log_path=tmp_path / "log.jsonl")
    losses = [record["loss"] for record in trained.fit.history]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert sorted(a % 2 for a in trained.validation_actors) == [0, 1]
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 3

    longer = TrainConfig(epochs=4, batch_size=16, lr=3e-3, seed=0)
    resumed = train_speech_model(cache, (7, 8, 9, 10), TINY_MODEL, longer, augment=None, checkpoint=checkpoint)
    assert len(resumed.fit.history) == 4
    assert resumed.fit.history[:3] == trained.fit.history   # the first three epochs were not rerun
    # the training time counts the checkpoint's epochs too, not only this (short) run's
    assert all(record["seconds"] > 0 for record in resumed.fit.history)
    assert training_seconds(resumed.fit) >= training_seconds(trained.fit) > 0

    path = save_speech_model(tmp_path / "final", resumed, cache, longer, augment=SpecAugment())
    model, meta = load_speech_model(path)
    windows = torch.from_numpy(cache.windows[:7])
    np.testing.assert_allclose(predict(model, windows), predict(resumed.model, windows), atol=1e-6)
    assert meta["labels"][1] == "calm" and meta["weight_layers"] == 4
    assert meta["training"]["validation_actors"] == list(resumed.validation_actors)
    assert json.loads((tmp_path / "final" / "config.json").read_text())["model_config"] == model.config()

    with pytest.raises(ModelFileError, match="not a speech model"):
        load_speech_model(checkpoint)     # the trainer's checkpoint is not a saved model
    with pytest.raises(ModelFileError, match="no such"):
        load_speech_model(tmp_path / "missing.pt")


@pytest.mark.shared_data
def test_benchmark_writes_table_json_and_confusions(small_cache: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_bench_command(parser.add_subparsers(dest="command"))
    out = tmp_path / "cv"
    args = parser.parse_args(["speech", "--cache", str(small_cache), "--folds", "0", "--epochs", "1",
                              "--channels", "8,16", "--embedding", "16", "--out", str(out)])
    assert args.run(args) == 0
    printed = capsys.readouterr().out
    assert "clip_accuracy_majority" in printed and "mean" in printed and "std" in printed
    results = json.loads((out / "results.json").read_text())
    (fold,) = results["folds"]
    assert fold["test_actors"] == [1, 2, 3, 4, 5, 6]
    assert not set(fold["validation_actors"] + fold["fit_actors"]) & set(fold["test_actors"])
    assert fold["test_clips"] == 8                      # 4 takes of actors 1 and 2
    assert np.sum(fold["confusion"]["clip_majority"]) == 8
    assert 0.0 <= fold["clip_accuracy_mean"] <= 1.0
    assert results["model"]["weight_layers"] == 4
    assert fold["model_config"] == {**fold["model_config"], "channels": [8, 16], "mel_bands": 40, "ceplifter": 22}
    for name in ("window", "clip_majority", "clip_mean"):
        assert (out / f"confusion_{name}.png").stat().st_size > 1000


def test_summarise_gives_mean_std_and_summed_confusions() -> None:
    confusion = {name: np.eye(2, dtype=int) for name in ("window", "clip_majority", "clip_mean")}
    folds = [{**{m: value for m in ("window_accuracy", "window_macro_f1", "clip_accuracy_majority",
                                    "clip_macro_f1_majority", "clip_accuracy_mean", "clip_macro_f1_mean")},
              "confusion": confusion} for value in (0.5, 0.7)]
    summary = summarise(folds)
    assert summary["clip_accuracy_mean"]["mean"] == pytest.approx(0.6)
    assert summary["clip_accuracy_mean"]["std"] == pytest.approx(0.1)
    assert summary["confusion"]["window"].tolist() == [[2, 0], [0, 2]]


def test_report_table_and_confusion_checks(tmp_path: Path) -> None:
    table = format_table([{"fold": 0, "acc": 0.51234}, {"fold": "mean", "acc": 0.6}], ("fold", "acc", "x"))
    lines = table.splitlines()
    assert lines[0].split() == ["fold", "acc", "x"]
    assert lines[2].split() == ["0", "0.512"] and lines[3].split() == ["mean", "0.600"]
    assert len({len(line) for line in lines}) == 1      # aligned columns
    with pytest.raises(ValueError, match="does not match 3 labels"):
        save_confusion_png(np.eye(2), ["a", "b", "c"], tmp_path / "c.png")


def test_device_option_refuses_unknown_and_unavailable_devices() -> None:
    parser = argparse.ArgumentParser()
    add_device_option(parser)
    assert parser.parse_args([]).device == "cpu"
    with pytest.raises(ValueError, match="not a torch device"):
        TrainConfig(device="tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA GPU"):
            TrainConfig(device="cuda")
        with pytest.raises(SystemExit):
            parser.parse_args(["--device", "cuda"])


def test_time_norm_ignores_a_fixed_microphone_colouring_and_stats_pooling_keeps_the_layer_count() -> None:
    model = SpeechCNN(channels=(8, 16), embedding=16, pooling="stats", time_norm=True).eval()
    assert count_weight_layers(model) == 4 and model.embed(torch.zeros(2, 3, 99, 40)).shape == (2, 16)
    x = torch.randn(4, 3, 99, 40) * 5
    model.fit_standardisation(x)
    # a fixed gain per mel band (a microphone's response) adds a constant to every static log mel frame
    colouring = model.to_log_mel.inverse(torch.linspace(-3, 3, 40))
    coloured = x.clone()
    coloured[:, 0] += colouring
    with torch.no_grad():
        torch.testing.assert_close(model(coloured), model(x), atol=1e-3, rtol=1e-3)
        plain = SpeechCNN(channels=(8, 16), embedding=16).eval()
        plain.fit_standardisation(x)
        assert (plain(coloured) - plain(x)).abs().max() > 1e-2
    with pytest.raises(ValueError, match="pooling"):
        SpeechCNN(pooling="max")


def test_mixup_blends_each_window_and_its_label_with_one_partner() -> None:
    x = torch.arange(6, dtype=torch.float32).reshape(6, 1) * 10
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    mixed, targets = mixup(x, y, 3, 0.4, torch.Generator().manual_seed(1))
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(6))
    weight = targets.max(dim=1).values.min()   # the same weight for the batch: each row mixes two ids
    assert 0.5 <= weight <= 1.0 and targets.shape == (6, 3)
    # a blend of x with a permutation of itself: the same total, values between the extremes
    torch.testing.assert_close(mixed.sum(), x.sum())
    assert float(mixed.min()) >= 0.0 and float(mixed.max()) <= 50.0
    soft = torch.full((6, 3), 1 / 3)
    assert torch.allclose(mixup(x, soft, 3, 0.4, torch.Generator())[1], soft)
