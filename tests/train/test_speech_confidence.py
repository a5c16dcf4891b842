"""Speech calibration: the temperature is part of the model (config, graph), is fitted on the validation actors
only, and the train and bench commands write calibrated models and per-fold ECE tables on a small real cache."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from train.cli.speech_bench import add_speech_command as add_bench_command
from train.cli.speech_calibrate import add_calibration_bench_command, add_speech_calibration_command
from train.data.feature_cache import load_speech_cache
from train.networks.speech_cnn import SpeechCNN
from train.speech.confidence import calibrate_speech_model, clip_posteriors
from train.speech.training import WindowSet, load_speech_model, save_speech_model, train_speech_model, windows_of
from train.trainer import TrainConfig, predict

TINY = ["--channels", "8,16", "--embedding", "16"]




def parser_with(add: object) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add(parser.add_subparsers(dest="command"))  # type: ignore[operator]
    return parser


def test_the_temperature_divides_the_logits_and_travels_in_the_config() -> None:
    torch.manual_seed(0)
    model = SpeechCNN(channels=(8, 16), embedding=16).eval()
    x = torch.randn(3, 3, 99, 40)
    logits = model(x)
    model.calibrate(2.5)
    torch.testing.assert_close(model(x), logits / 2.5)
    # the fusion code reads embeddings and posteriors through embed and classifier: calibrated as well
    torch.testing.assert_close(model.classifier(model.embed(x)), logits / 2.5)
    assert model.config()["temperature"] == 2.5
    rebuilt = SpeechCNN(**model.config()).eval()
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt(x), model(x))
    with pytest.raises(ValueError, match="positive"):
        model.calibrate(0.0)


def test_clip_posteriors_average_each_clips_windows() -> None:
    posteriors = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])
    windows = WindowSet(x=torch.zeros(3), y=torch.tensor([0, 0, 1]), take_ids=np.array(["a", "a", "b"]))
    means, labels = clip_posteriors(posteriors, windows)
    np.testing.assert_allclose(means, [[0.7, 0.3], [0.2, 0.8]])
    assert labels.tolist() == [0, 1]


@pytest.mark.shared_data
def test_calibration_fits_on_the_validation_actors_and_the_command_saves_it(
        small_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.set_num_threads(1)
    cache = load_speech_cache(small_cache)
    config = TrainConfig(epochs=4, batch_size=16, lr=3e-3, seed=0)
    trained = train_speech_model(cache, (7, 8, 9, 10), {"channels": (8, 16), "embedding": 16}, config, augment=None)
    validation = windows_of(cache, trained.validation_actors)
    report = calibrate_speech_model(trained.model, validation)
    assert trained.model.config()["temperature"] == pytest.approx(report["temperature"])
    fitted = report["validation"]
    assert fitted["calibrated"]["window"]["nll"] <= fitted["uncalibrated"]["window"]["nll"] + 1e-6
    # a temperature changes confidence, never the decision
    assert fitted["calibrated"]["window"]["accuracy"] == fitted["uncalibrated"]["window"]["accuracy"]

    trained.model.calibrate(1.0)
    source = save_speech_model(tmp_path / "final", trained, cache, config, augment=None)
    args = parser_with(add_speech_calibration_command).parse_args(
        ["speech-calibrate", "--model", str(source), "--cache", str(small_cache), "--out", str(tmp_path / "cal"),
         "--threads", "1"])
    assert args.run(args) == 0
    assert "temperature" in capsys.readouterr().out
    model, meta = load_speech_model(tmp_path / "cal" / "speech_cnn.pt")
    assert meta["model_config"]["temperature"] == pytest.approx(report["temperature"])
    assert meta["training"]["calibration"]["fitted_on"].startswith("window NLL of the validation actors")
    saved = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    assert saved["source_model"] == str(source) and saved["ece_bins"] == 15
    x = validation.x[:5]
    torch.testing.assert_close(torch.from_numpy(predict(model, x)),
                               torch.softmax(trained.model(x) / report["temperature"], dim=1))


@pytest.mark.shared_data
def test_the_bench_scores_each_fold_on_its_test_actors(small_cache: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    cv = tmp_path / "cv"
    bench = parser_with(add_bench_command).parse_args(
        ["speech", "--cache", str(small_cache), "--folds", "0", "--epochs", "1", *TINY, "--out", str(cv)])
    assert bench.run(bench) == 0
    args = parser_with(add_calibration_bench_command).parse_args(
        ["speech-calibration", "--cv", str(cv), "--cache", str(small_cache), "--out", str(tmp_path / "cal"),
         "--threads", "1"])
    assert args.run(args) == 0
    assert "ece" in capsys.readouterr().out
    report = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    (fold,) = report["folds"]
    assert fold["fold"] == 0 and fold["test_actors"] == [1, 2, 3, 4, 5, 6] and fold["temperature"] > 0
    assert {(r["level"], r["posterior"]) for r in report["summary"]} == {
        (level, state) for level in ("window", "clip") for state in ("uncalibrated", "calibrated")}
    clip = fold["test"]["calibrated"]["clip"]
    assert 0 <= clip["ece"] <= 1 and 0 <= clip["accuracy"] <= 1

    # a fold model calibrated on its validation actors becomes a saved model, ready for export
    one = parser_with(add_speech_calibration_command).parse_args(
        ["speech-calibrate", "--model", str(cv / "fold0" / "checkpoint.pt"), "--cache", str(small_cache),
         "--out", str(tmp_path / "fold0"), "--threads", "1"])
    assert one.run(one) == 0
    model, meta = load_speech_model(tmp_path / "fold0" / "speech_cnn.pt")
    assert meta["model_config"]["temperature"] == pytest.approx(fold["temperature"])
    assert meta["input"]["shape"] == ["batch", 3, 99, 40] and meta["training"]["test_actors"] == [1, 2, 3, 4, 5, 6]
    assert meta["weight_layers"] == 4 and meta["features"]["mfcc"]["numcep"] == 40
