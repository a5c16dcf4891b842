"""The per-model micro-benchmark: every form of every shipped model on every backend and batch, or why not."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from edge.app.bench_models import bench_models, interleaved_ms, model_forms, random_input
from edge.app.cli import main
from edge.models import DETECTOR_MODEL, FACE_MODEL, SPEECH_MODEL
from edge.runtime.select import int8_twin


def test_the_forms_beside_a_model_are_found() -> None:
    assert model_forms(FACE_MODEL) == {"fp32": FACE_MODEL, "int8-cpu": int8_twin(FACE_MODEL, "cpu"),
                                       "int8": int8_twin(FACE_MODEL, "tensorrt")}
    assert model_forms(DETECTOR_MODEL) == {"fp32": DETECTOR_MODEL}


def test_inputs_follow_the_sidecar_and_a_fixed_batch_is_respected() -> None:
    rng = np.random.default_rng(0)
    face = random_input(FACE_MODEL, 4, rng)
    assert face is not None and face.shape == (4, 1, 48, 48) and face.dtype == np.float32 and face.min() >= 0
    assert random_input(DETECTOR_MODEL, 1, rng) is not None and random_input(DETECTOR_MODEL, 4, rng) is None


def test_calls_alternate_within_every_round() -> None:
    order: list[str] = []
    times = interleaved_ms({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=3, warmup=1)
    assert order == ["a", "b"] * 4 and [len(v) for v in times.values()] == [3, 3]


def test_every_shipped_model_form_and_batch_is_timed_and_tensorrt_says_why_not(tmp_path: Path) -> None:
    rows = bench_models([SPEECH_MODEL, FACE_MODEL, DETECTOR_MODEL], [1, 2], repeats=3, warmup=1, threads=1)
    timed = {(r["model"], r["form"], r["backend"], r["batch"]): r for r in rows if "skipped" not in r}
    for model in (SPEECH_MODEL, FACE_MODEL):
        for form in ("fp32", "int8-cpu", "int8"):
            for batch in (1, 2):
                row = timed[(model.name, form, "onnxruntime", batch)]
                assert 0 < row["p10_ms"] <= row["median_ms"] <= row["p90_ms"]
                assert row["per_item_ms"] == pytest.approx(row["median_ms"] / batch, abs=1e-3)
        assert timed[(model.name, "fp32", "onnxruntime", 1)]["vs_fp32"] == 1.0
    assert (DETECTOR_MODEL.name, "fp32", "onnxruntime", 1) in timed
    assert (DETECTOR_MODEL.name, "fp32", "onnxruntime", 2) not in timed   # its graph takes one 640x640 image
    if importlib.util.find_spec("tensorrt") is None:
        skipped = [r for r in rows if "skipped" in r]
        assert {r["backend"] for r in skipped} == {"tensorrt"} and all("TensorRT" in r["skipped"] for r in skipped)
    out = tmp_path / "models.json"
    assert main(["bench-models", "--model", str(FACE_MODEL), "--batches", "1", "--repeats", "2", "--warmup", "1",
                 "--out", str(out)]) == 0
    assert {row["form"] for row in json.loads(out.read_text())["rows"]} == {"fp32", "int8-cpu", "int8"}
