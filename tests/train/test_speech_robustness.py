"""Degradations do what they say on real speech, and the robustness benchmark runs end to end on real takes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.features.audio import load_audio
from edge.features.vad import VadParams
from train.speech.degrade import (
    CONDITIONS,
    Condition,
    SpeechAugment,
    babble_from,
    degrade,
    telephone,
    voiced_power,
)

SR = 16000


@pytest.fixture(scope="module")
def speech(speech_flac: Path) -> np.ndarray:
    return load_audio(speech_flac, SR)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    vad = VadParams()
    return 10 * np.log10(voiced_power(clean, SR, vad) / np.mean(np.square(noisy - clean)))


def test_noise_lands_at_the_asked_snr_of_the_voiced_part(speech: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    for snr in (20.0, 10.0, 5.0):
        noisy = degrade(speech, Condition("white", snr), SR, VadParams(), rng)
        assert abs(snr_db(speech, noisy) - snr) < 0.2
    talkers = babble_from([speech[::-1].copy(), np.roll(speech, 5000)])
    babbled = degrade(speech, Condition("babble", 10.0), SR, VadParams(), rng, talkers)
    assert abs(snr_db(speech, babbled) - 10.0) < 0.2
    with pytest.raises(ValueError, match="babble"):
        degrade(speech, Condition("babble", 10.0), SR, VadParams(), rng)


def test_telephone_band_reverb_and_level(speech: np.ndarray) -> None:
    spectrum = np.abs(np.fft.rfft(telephone(speech, SR)))
    freqs = np.fft.rfftfreq(len(speech), 1 / SR)
    in_band = spectrum[(freqs > 500) & (freqs < 3000)].mean()
    assert spectrum[freqs < 100].mean() < 0.05 * in_band and spectrum[freqs > 6000].mean() < 0.05 * in_band
    wet = degrade(speech, Condition("reverb", 0.6), SR, VadParams(), np.random.default_rng(1))
    rms = [float(np.sqrt(np.mean(np.square(a)))) for a in (wet, speech)]
    assert wet.shape == speech.shape and np.isclose(*rms, rtol=1e-3)
    assert np.corrcoef(wet, speech)[0, 1] < 0.9          # smeared in time, not a copy
    loud = degrade(speech, Condition("gain", 20.0), SR, VadParams(), np.random.default_rng(2))
    assert np.abs(loud).max() <= 1.0 and np.mean(np.abs(loud) == 1.0) > 0.001   # clipped
    quiet = degrade(speech, Condition("gain", -20.0), SR, VadParams(), np.random.default_rng(2))
    np.testing.assert_allclose(quiet, speech * 0.1, atol=1e-6)


def test_the_benchmark_conditions_are_the_issues_list() -> None:
    assert [c.name for c in CONDITIONS] == [
        "clean", "white 20 dB", "white 10 dB", "white 5 dB", "babble 20 dB", "babble 10 dB", "babble 5 dB",
        "reverb 0.6 s", "telephone", "level -20 dB", "level +20 dB"]


def test_augmentation_is_seeded_and_varied(speech: np.ndarray) -> None:
    augment = SpeechAugment(copies=2)
    first = augment.apply(speech, SR, VadParams(), np.random.default_rng(7), None)
    again = augment.apply(speech, SR, VadParams(), np.random.default_rng(7), None)
    other = augment.apply(speech, SR, VadParams(), np.random.default_rng(8), None)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other) and not np.allclose(first, speech)
    kinds = {c.kind for seed in range(40) for c in augment.conditions(np.random.default_rng(seed))}
    assert kinds == {"white", "babble", "reverb", "telephone", "gain"}
    with pytest.raises(ValueError, match="copies"):
        SpeechAugment(copies=0)


def test_the_benchmark_scores_a_fold_model_and_the_baseline_on_degraded_real_takes(
        ravdess_speech_dir: Path, tmp_path: Path) -> None:
    import argparse

    from edge.features.mfcc import MfccParams
    from train.cli.speech_bench import add_speech_command
    from train.data.feature_cache import SpeechCacheSpec, build_cache
    from train.data.ravdess import actor_folds, index_ravdess
    from train.speech.benchmark import load_fold_model
    from train.speech.robustness import evaluate_fold, save_robustness_png, summary_rows

    actors = (1, 2, 7, 8, 9, 10)
    takes = [t for t in index_ravdess(ravdess_speech_dir).takes
             if t.actor in actors and t.repetition == 1 and t.intensity == 1 and t.emotion in (3, 5)]
    cache = build_cache(takes, SpeechCacheSpec(), tmp_path / "cache", ravdess_speech_dir, workers=2,
                        progress=False).directory
    parser = argparse.ArgumentParser()
    add_speech_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["speech", "--cache", str(cache), "--folds", "0", "--epochs", "1", "--channels", "8,16",
                              "--embedding", "16", "--out", str(tmp_path / "cv")])
    assert args.run(args) == 0
    model, meta = load_fold_model(tmp_path / "cv" / "fold0" / "checkpoint.pt")
    conditions = [CONDITIONS[0], Condition("white", 5.0), Condition("babble", 10.0), Condition("gain", 20.0)]
    fold = actor_folds()[0]
    result = evaluate_fold(model, fold, takes, MfccParams(**meta["features"]["mfcc"]),
                           VadParams(**meta["features"]["vad"]), conditions)
    assert result["clips"] == 8 and result["svm_c"] in (1.0, 10.0, 100.0)
    for name, scores in result["conditions"].items():
        assert 0.0 <= scores["cnn"] <= 1.0 and 0.0 <= scores["svm"] <= 1.0, name
    again = evaluate_fold(model, fold, takes, MfccParams(), VadParams(), conditions, svm=False)
    assert {n: s["cnn"] for n, s in again["conditions"].items()} == {
        n: s["cnn"] for n, s in result["conditions"].items()}           # the same noise on every run
    rows = summary_rows([result], conditions)
    assert [r["condition"] for r in rows] == [c.name for c in conditions] and rows[0]["cnn_drop_points"] == 0.0
    assert save_robustness_png(rows, tmp_path / "r.png", "test").stat().st_size > 1000
    json.dumps(rows)


def test_an_augmented_cache_holds_degraded_copies_that_only_training_uses(ravdess_speech_dir: Path,
                                                                          tmp_path: Path) -> None:
    from train.data.feature_cache import SpeechCacheSpec, build_cache, load_speech_cache
    from train.data.ravdess import index_ravdess
    from train.speech.training import windows_of

    takes = [t for t in index_ravdess(ravdess_speech_dir).takes
             if t.actor in (1, 2, 3) and t.repetition == 1 and t.intensity == 1 and t.emotion in (3, 5)]
    plain = build_cache(takes, SpeechCacheSpec(), tmp_path, ravdess_speech_dir, workers=1, progress=False)
    spec = SpeechCacheSpec(augment=SpeechAugment(copies=2))
    report = build_cache(takes, spec, tmp_path, ravdess_speech_dir, workers=2, progress=False)
    assert report.directory != plain.directory and report.failures == []     # its own cache, keyed on the recipe
    cache = load_speech_cache(report.directory)
    clean = load_speech_cache(plain.directory)
    np.testing.assert_array_equal(cache.windows, clean.windows)             # the clean windows are the same
    assert len(cache.augmented) >= len(cache.windows) and cache.augmented.shape[1:] == cache.windows.shape[1:]
    assert not np.allclose(cache.augmented[: len(cache.windows)], cache.windows[: len(cache.augmented)])
    assert len(clean.augmented) == 0
    with_copies, without = windows_of(cache, [1, 2], augmented=True), windows_of(cache, [1, 2])
    assert len(with_copies.x) > len(without.x) and set(with_copies.take_ids) == set(without.take_ids)
    again = build_cache(takes, spec, tmp_path / "again", ravdess_speech_dir, workers=1, progress=False)
    np.testing.assert_array_equal(load_speech_cache(again.directory).augmented, cache.augmented)   # seeded
