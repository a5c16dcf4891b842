"""INT8 QDQ vs FP32: accuracy on the benchmark sets and ONNX Runtime CPU latency, side by side.

Accuracy (``emotion-export int8-report``), every row the same decision made by both models on
the same real inputs: accuracy of each, the drop in points, and the argmax agreement between the
two; the target is a drop of at most 1 point and at least 97 % agreement.

* FER2013 test: the shipped face model on every test image;
* RAVDESS speech folds: each fold model of the speech cross-validation (``emotion-bench speech``
  checkpoints) exported to ONNX, calibrated on its own training actors only and quantized with
  the shipped settings, scored on its test actors (windows and majority-vote clips);
* RAVDESS AV clips: the shipped face model on the aligned faces (frames and key-face majority per
  clip, calm counted as neutral) and the shipped speech model on the clips' MFCC windows.

Latency: both models of each pair in ONNX Runtime on this CPU, in one process, interleaved
(FP32 call, INT8 call, ...) after a warm-up, so load changes hit both alike; median and 90th
percentile per call for each batch size. Results go to ``report.json`` and ``report.md``.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import InputError
from edge.runtime.onnxruntime_backend import OnnxRuntimeBackend
from edge.sidecar import ModelSidecar, file_sha256, write_sidecar
from edge.taxonomy import RAVDESS_LABELS, to_emotion7
from export.calibration_data import speech_calibration
from export.quantize import QuantizeSettings, int8_path, quantize_qdq
from train.data.feature_cache import load_av_cache, load_speech_cache
from train.data.image_folder import index_image_folder, load_images
from train.metrics import clip_votes, vote

MAX_DROP_POINTS = 1.0
MIN_AGREEMENT = 0.97
ACCURACY_COLUMNS = ("benchmark", "unit", "count", "fp32_accuracy", "int8_accuracy", "drop_points", "agreement",
                    "meets_target")
Labels = Sequence[int] | np.ndarray
LATENCY_COLUMNS = ("model", "batch", "fp32_ms", "int8_ms", "speedup", "fp32_p90_ms", "int8_p90_ms")


@dataclass
class ModelPair:
    """An FP32 model and its INT8 QDQ twin, both in ONNX Runtime on the CPU."""

    name: str
    fp32: OnnxRuntimeBackend
    int8: OnnxRuntimeBackend

    @classmethod
    def open(cls, fp32_path: Path, int8: Path | None = None, threads: int = 1, form: str = "tensorrt") -> ModelPair:
        return cls(fp32_path.stem, OnnxRuntimeBackend(fp32_path, threads=threads),
                   OnnxRuntimeBackend(int8 or int8_path(fp32_path, form), threads=threads))

    def logits(self, inputs: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        def run(backend: OnnxRuntimeBackend) -> np.ndarray:
            return np.concatenate([backend.run(inputs[i : i + batch_size])["logits"]
                                   for i in range(0, len(inputs), batch_size)])

        return run(self.fp32), run(self.int8)


def _sample_shape(pair: ModelPair) -> tuple[int, ...]:
    """The static shape of one input sample (the sidecar's shape without the batch axis)."""
    return tuple(int(d) for d in pair.fp32.sidecar.input_shape[1:] if d is not None)


def compare(benchmark: str, unit: str, truth: Labels, fp32: Labels, int8: Labels, **extra: Any) -> dict[str, Any]:
    """One report row: the accuracy of both decisions, the drop in points and their agreement."""
    truth_a, fp32_a, int8_a = (np.asarray(v) for v in (truth, fp32, int8))
    fp32_accuracy, int8_accuracy = float(np.mean(fp32_a == truth_a)), float(np.mean(int8_a == truth_a))
    drop = 100.0 * (fp32_accuracy - int8_accuracy)
    agreement = float(np.mean(fp32_a == int8_a))
    return {"benchmark": benchmark, "unit": unit, "count": int(truth_a.size), "fp32_accuracy": fp32_accuracy,
            "int8_accuracy": int8_accuracy, "drop_points": drop, "agreement": agreement,
            "meets_target": bool(drop <= MAX_DROP_POINTS and agreement >= MIN_AGREEMENT), **extra}


def fer_rows(face: ModelPair, fer_test: Path) -> list[dict[str, Any]]:
    """The face model on every image of a FER2013-style test folder."""
    loaded = load_images(index_image_folder(fer_test, face.fp32.sidecar.labels), size=_sample_shape(face)[-1])
    fp32, int8 = face.logits(loaded.images[:, None].astype(np.float32))
    return [compare("FER2013 test", "images", loaded.label_ids, fp32.argmax(1), int8.argmax(1))]


def av_rows(face: ModelPair, speech: ModelPair, av_cache: Path) -> list[dict[str, Any]]:
    """Face frames/clips and speech windows/clips of an audio-visual RAVDESS cache."""
    cache = load_av_cache(av_cache)
    labels = list(face.fp32.sidecar.labels)
    rows: dict[str, list[list[int]]] = {
        name: [[], [], []] for name in ("frames", "face clips", "windows", "speech clips")}
    for clip in cache.clips:
        face_truth = labels.index(to_emotion7(RAVDESS_LABELS[clip.label_id]))
        fp32, int8 = face.logits(clip.crops[:, None].astype(np.float32))
        for column, values in zip(rows["frames"], ([face_truth] * len(fp32), fp32.argmax(1), int8.argmax(1)),
                                  strict=True):
            column.extend(int(v) for v in values)
        keys = clip.key_faces
        for column, value in zip(rows["face clips"], (face_truth, vote(fp32[keys]), vote(int8[keys])), strict=True):
            column.append(value)
        fp32, int8 = speech.logits(clip.windows.astype(np.float32))
        for column, values in zip(rows["windows"], ([clip.label_id] * len(fp32), fp32.argmax(1), int8.argmax(1)),
                                  strict=True):
            column.extend(int(v) for v in values)
        for column, value in zip(rows["speech clips"], (clip.label_id, vote(fp32), vote(int8)), strict=True):
            column.append(value)
    note = "actor 05 is in the final speech model's training data"
    return [
        compare("RAVDESS AV face", "frames", *rows["frames"]),
        compare("RAVDESS AV face", "clips (key-face majority)", *rows["face clips"]),
        compare("RAVDESS AV speech", "windows", *rows["windows"], note=note),
        compare("RAVDESS AV speech", "clips (majority)", *rows["speech clips"], note=note),
    ]


def _export_fold(state: dict[str, Any], model_config: dict[str, Any], cache: Any, path: Path) -> Path:
    """Write fold model weights as ONNX with a sidecar (torch is imported here only)."""
    import torch

    from export.onnx_export import OUTPUTS, export_onnx
    from train.networks.speech_cnn import SpeechCNN

    model = SpeechCNN(n_classes=len(RAVDESS_LABELS), in_channels=cache.windows.shape[1],
                      coefficients=cache.windows.shape[3], **model_config)
    model.load_state_dict(state)
    export_onnx(model, torch.from_numpy(cache.windows[:2]), path, "mfcc")
    params = cache.manifest["params"]
    write_sidecar(path, ModelSidecar(
        name=path.stem, kind="speech", labels=RAVDESS_LABELS, input_name="mfcc",
        input_shape=(None, *cache.windows.shape[1:]), outputs=OUTPUTS, sha256=file_sha256(path),
        features={"mfcc": params["mfcc"], "vad": params["vad"]}, source={"checkpoint": "fold best_state"}))
    return path


def fold_rows(cv_dir: Path, cache_dir: Path, work: Path, settings: QuantizeSettings, per_class: int,
              seed: int) -> list[dict[str, Any]]:
    """Each speech CV fold model in FP32 and INT8 (calibrated on its training actors) on its test actors."""
    import torch

    results_path = cv_dir / "results.json"
    if not results_path.is_file():
        raise InputError(f"{cv_dir}: no results.json; run `emotion-bench speech` to the end first")
    results = json.loads(results_path.read_text())
    cache = load_speech_cache(cache_dir)
    rows = []
    for fold in results["folds"]:
        checkpoint = cv_dir / f"fold{fold['fold']}" / "checkpoint.pt"
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)["best_state"]
        fp32_path = _export_fold(state, results["settings"]["model_config"], cache,
                                 work / f"speech_fold{fold['fold']}.onnx")
        train_actors = sorted(set(cache.actors.tolist()) - set(fold["test_actors"]))
        calibration = speech_calibration(cache_dir, per_class, seed, actors=train_actors)
        pair = ModelPair.open(fp32_path, quantize_qdq(fp32_path, calibration, settings=settings))
        test = np.isin(cache.window_actors, fold["test_actors"])
        fp32, int8 = pair.logits(cache.windows[test])
        truth = cache.window_labels[test]
        takes = np.asarray(cache.take_ids)[cache.window_take[test]]
        clip_truth = {str(t): int(y) for t, y in zip(takes, truth, strict=True)}
        fp32_votes, int8_votes = clip_votes(fp32, takes), clip_votes(int8, takes)
        clips = list(fp32_votes)
        name = f"RAVDESS speech fold {fold['fold']}"
        rows.append(compare(name, "windows", truth, fp32.argmax(1), int8.argmax(1)))
        rows.append(compare(name, "clips (majority)", [clip_truth[c] for c in clips], [fp32_votes[c] for c in clips],
                            [int8_votes[c] for c in clips]))
    for unit in ("windows", "clips (majority)"):
        fold_values = [r for r in rows if r["unit"] == unit]
        mean = {key: float(np.mean([r[key] for r in fold_values])) for key in
                ("fp32_accuracy", "int8_accuracy", "drop_points", "agreement")}
        rows.append({"benchmark": "RAVDESS speech folds, mean", "unit": unit,
                     "count": sum(r["count"] for r in fold_values), **mean,
                     "meets_target": bool(mean["drop_points"] <= MAX_DROP_POINTS
                                          and mean["agreement"] >= MIN_AGREEMENT)})
    return rows


def latency_rows(pairs: Sequence[ModelPair], inputs: dict[str, np.ndarray], batches: Sequence[int],
                 repeats: int, warmup: int = 10) -> list[dict[str, Any]]:
    """Per model and batch size: interleaved FP32/INT8 calls, median and p90 milliseconds."""
    rows = []
    for pair in pairs:
        for batch in batches:
            x = np.ascontiguousarray(np.resize(inputs[pair.name], (batch, *inputs[pair.name].shape[1:])))
            times: dict[str, list[float]] = {"fp32": [], "int8": []}
            for k in range(warmup + repeats):
                for name, backend in (("fp32", pair.fp32), ("int8", pair.int8)):
                    start = time.perf_counter()
                    backend.run(x)
                    if k >= warmup:
                        times[name].append(1000.0 * (time.perf_counter() - start))
            fp32_ms, int8_ms = statistics.median(times["fp32"]), statistics.median(times["int8"])
            rows.append({"model": pair.name, "batch": batch, "fp32_ms": fp32_ms, "int8_ms": int8_ms,
                         "speedup": fp32_ms / int8_ms,
                         "fp32_p90_ms": float(np.percentile(times["fp32"], 90)),
                         "int8_p90_ms": float(np.percentile(times["int8"], 90))})
    return rows


def markdown(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Rows as a Markdown table (floats with 3 decimals, accuracies and agreement in %)."""
    def cell(key: str, value: Any) -> str:
        if key in ("fp32_accuracy", "int8_accuracy", "agreement"):
            return f"{100 * value:.2f} %"
        if isinstance(value, bool):
            return "yes" if value else "**no**"
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(c, row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)








