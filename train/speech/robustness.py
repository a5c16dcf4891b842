"""The speech model on degraded audio: each CV fold's model on its own test takes, clean and degraded.

For every fold of a speech cross-validation run, the test actors' takes are decoded, degraded by
each ``Condition`` (``train.speech.degrade``; babble is made of the fold's *other* test actors, so
no voice of a training actor is heard at test time) and sent through the device's feature path:
VAD trimming, MFCC windows, the fold's model, the mean posterior per clip. A take in which the VAD
finds no speech after degradation counts as wrong (and is counted). Beside the CNN the classic
baseline of ``../shared/BASELINES.md`` runs on the same takes: MFCC + deltas of the trimmed take,
mean and std pooled, an RBF SVM whose C is chosen by actor-grouped CV on the fold's training actors
(trained on clean training takes only, like the CNN).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from tqdm import tqdm

from edge.features.audio import load_audio
from edge.features.mfcc import MfccParams, mfcc_features, mfcc_windows
from edge.features.vad import VadParams, trim_silence
from train.data.ravdess import Fold, RavdessTake
from train.metrics import mean_std
from train.networks.speech_cnn import SpeechCNN
from train.speech.degrade import BABBLE_SOURCES, CONDITIONS, Babble, Condition, babble_from, degrade
from train.trainer import predict

SVM_C = (1.0, 10.0, 100.0)


def clip_posterior(model: SpeechCNN, voiced: np.ndarray, mfcc: MfccParams) -> np.ndarray:
    """The mean posterior of the MFCC windows of a VAD-trimmed take."""
    return np.asarray(predict(model, torch.from_numpy(mfcc_windows(voiced, mfcc))).mean(axis=0))


def pooled_mfcc(voiced: np.ndarray, mfcc: MfccParams) -> np.ndarray:
    """The baseline's clip features: mean and std over frames of MFCCs + deltas of a VAD-trimmed take."""
    frames = mfcc_features(voiced, mfcc)
    return np.concatenate([frames.mean(axis=0), frames.std(axis=0)])


@dataclass
class SvmBaseline:
    """Standardised pooled MFCCs and an RBF SVM, C chosen by actor-grouped CV on the training takes."""

    mfcc: MfccParams
    vad: VadParams

    def fit(self, takes: Sequence[RavdessTake]) -> SvmBaseline:
        rows = []
        for take in takes:
            voiced = trim_silence(load_audio(take.path, self.mfcc.sample_rate), self.mfcc.sample_rate, self.vad)
            if voiced.size:
                rows.append((pooled_mfcc(voiced, self.mfcc), take))
        x = np.stack([features for features, _ in rows])
        y, groups = np.array([t.label_id for _, t in rows]), np.array([t.actor for _, t in rows])
        search = GridSearchCV(make_pipeline(StandardScaler(), SVC(kernel="rbf")), {"svc__C": list(SVM_C)},
                              cv=GroupKFold(n_splits=4), n_jobs=1)
        search.fit(x, y, groups=groups)
        self.model, self.c = search.best_estimator_, float(search.best_params_["svc__C"])
        return self

    def label(self, voiced: np.ndarray) -> int:
        """The class of a VAD-trimmed take."""
        return int(self.model.predict(pooled_mfcc(voiced, self.mfcc)[None])[0])


def take_rng(take: RavdessTake, condition: Condition, seed: int) -> np.random.Generator:
    """The noise of one take under one condition: the same on every run."""
    return np.random.default_rng([seed, zlib.crc32(take.take_id.encode()), zlib.crc32(condition.name.encode())])


def babble_for(take: RavdessTake, audio: dict[str, np.ndarray], test_takes: Sequence[RavdessTake],
               seed: int) -> Babble:
    """Babble of the fold's other test actors (``BABBLE_SOURCES`` of their takes, chosen per take);
    ``audio`` holds the decoded test takes by take id."""
    others = [t for t in test_takes if t.actor != take.actor]
    rng = np.random.default_rng([seed, zlib.crc32(take.take_id.encode())])
    chosen = rng.choice(len(others), size=min(BABBLE_SOURCES, len(others)), replace=False)
    return babble_from([audio[others[i].take_id] for i in chosen])


def evaluate_fold(model: SpeechCNN, fold: Fold, takes: Sequence[RavdessTake], mfcc: MfccParams, vad: VadParams,
                  conditions: Sequence[Condition] = CONDITIONS, svm: bool = True, seed: int = 0) -> dict[str, Any]:
    """Clip accuracy of the fold's model (and of the baseline) on its test takes under each condition."""
    test = [t for t in takes if t.actor in fold.test_actors]
    baseline = SvmBaseline(mfcc, vad).fit([t for t in takes if t.actor in fold.train_actors]) if svm else None
    correct = {c.name: {"cnn": 0, "svm": 0, "no_speech": 0} for c in conditions}
    decoded = {t.take_id: load_audio(t.path, mfcc.sample_rate) for t in test}
    for take in tqdm(test, desc=f"robustness fold {fold.index}", unit="take"):
        audio, babble = decoded[take.take_id], babble_for(take, decoded, test, seed)
        for condition in conditions:
            degraded = degrade(audio, condition, mfcc.sample_rate, vad, take_rng(take, condition, seed), babble)
            voiced = trim_silence(degraded, mfcc.sample_rate, vad)   # once: the CNN and the baseline share it
            counts = correct[condition.name]
            if voiced.size == 0:
                counts["no_speech"] += 1
                continue
            counts["cnn"] += int(np.argmax(clip_posterior(model, voiced, mfcc))) == take.label_id
            if baseline is not None:
                counts["svm"] += baseline.label(voiced) == take.label_id
    result: dict[str, Any] = {"fold": fold.index, "test_actors": list(fold.test_actors), "clips": len(test),
                              "svm_c": baseline.c if baseline else None, "conditions": {}}
    for name, counts in correct.items():
        result["conditions"][name] = {"cnn": counts["cnn"] / len(test), "no_speech": counts["no_speech"],
                                      **({"svm": counts["svm"] / len(test)} if baseline else {})}
    return result


def summary_rows(folds: Sequence[dict[str, Any]], conditions: Sequence[Condition] = CONDITIONS) -> list[dict[str, Any]]:
    """Per condition: mean ± std over folds of each model's clip accuracy and its drop from clean."""
    models = [m for m in ("cnn", "svm") if all(m in f["conditions"][conditions[0].name] for f in folds)]
    clean = {m: mean_std([f["conditions"][conditions[0].name][m] for f in folds])[0] for m in models}
    rows = []
    for condition in conditions:
        row: dict[str, Any] = {"condition": condition.name}
        for m in models:
            mean, std = mean_std([f["conditions"][condition.name][m] for f in folds])
            row.update({f"{m}_clip_accuracy": mean, f"{m}_std": std, f"{m}_drop_points": 100 * (clean[m] - mean)})
        row["no_speech_clips"] = sum(f["conditions"][condition.name]["no_speech"] for f in folds)
        rows.append(row)
    return rows


def save_robustness_png(rows: Sequence[dict[str, Any]], path: str | Path, title: str) -> Path:
    """Clip accuracy per condition, CNN and baseline side by side, with the fold spread."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [m for m in ("cnn", "svm") if f"{m}_clip_accuracy" in rows[0]]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(rows), 4.0))
    for k, m in enumerate(models):
        ax.bar(x + (k - (len(models) - 1) / 2) * 0.38, [r[f"{m}_clip_accuracy"] for r in rows], 0.36,
               yerr=[r[f"{m}_std"] for r in rows], capsize=2, label={"cnn": "speech CNN", "svm": "MFCC + SVM"}[m])
    ax.set_xticks(x, [r["condition"] for r in rows], rotation=35, ha="right")
    ax.set_ylabel("clip accuracy (mean over folds)")
    ax.set_ylim(0, 1)
    ax.axhline(1 / 8, color="grey", linewidth=0.8, linestyle=":")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
