"""``emotion-edge bench-models``: each model alone, batch x precision x backend, calls interleaved.

For every model (default: the shipped speech CNN, face CNN and YuNet), every form of it that
exists beside it (``fp32``: the file itself; ``int8-cpu`` and ``int8``: its INT8 twins, the CPU
and the TensorRT form) runs on every backend that exists here (ONNX Runtime on the CPU always;
TensorRT where its Python bindings and a built engine are, else the row says why not), at every
batch size its graph takes. Inputs are random in the range the model expects; after ``warmup``
untimed rounds the calls of one model and batch alternate over ``repeats`` rounds, so that a
noisy machine slows them alike. Per row: median, p10 and p90 milliseconds per call, per item,
and the median against the FP32 form on the same backend and batch.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from edge.config.schema import ModelsConfig
from edge.errors import ModelFileError
from edge.models import DETECTOR_MODEL, FACE_MODEL, SPEECH_MODEL
from edge.runtime.backend import Backend
from edge.runtime.select import int8_twin, load_backend
from edge.sidecar import read_sidecar

DEFAULT_BENCH_MODELS = (SPEECH_MODEL, FACE_MODEL, DETECTOR_MODEL)
BACKENDS = ("onnxruntime", "tensorrt")


def interleaved_ms(calls: dict[str, Callable[[], Any]], repeats: int, warmup: int) -> dict[str, list[float]]:
    """Milliseconds of each call over ``repeats`` rounds (after ``warmup``), the calls alternating each round."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for round_index in range(warmup + repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            if round_index >= warmup:
                times[name].append(1000.0 * (time.perf_counter() - start))
    return times


def model_forms(model: Path) -> dict[str, Path]:
    """The forms of ``model`` on disk: ``fp32`` (itself), ``int8-cpu`` and ``int8`` (its INT8 twins)."""
    forms = {"fp32": model, "int8-cpu": int8_twin(model, "cpu"), "int8": int8_twin(model, "tensorrt")}
    return {form: path for form, path in forms.items() if path.is_file()}


def random_input(model: Path, batch: int, rng: np.random.Generator) -> np.ndarray | None:
    """A batch of random input for ``model`` (0..255 for images, standard normal otherwise); None when the
    graph's batch size is fixed to another one."""
    sidecar = read_sidecar(model)
    first, *rest = sidecar.input_shape
    if isinstance(first, int) and first != batch:
        return None
    dims = [dim for dim in rest if isinstance(dim, int)]
    if len(dims) != len(rest):
        raise ModelFileError(f"{model}: input shape {list(sidecar.input_shape)} is dynamic beyond the batch")
    shape = (batch, *dims)
    images = sidecar.kind in ("face", "detector")
    values = rng.uniform(0, 255, shape) if images else rng.standard_normal(shape)
    return values.astype(np.dtype(sidecar.input_dtype))


def _load(path: Path, backend: str, form: str, threads: int) -> Backend:
    settings = ModelsConfig(backend=backend, threads=threads, spinning=False)
    return load_backend(path, settings, precision="int8" if form.startswith("int8") and backend == "tensorrt" else None)


def bench_models(models: Sequence[Path], batches: Sequence[int], repeats: int, warmup: int,
                 threads: int) -> list[dict[str, Any]]:
    """One row per model, form, backend and batch (see the module docstring); rows that cannot run say why."""
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []
    for model in models:
        loaded: dict[tuple[str, str], Backend] = {}
        for form, path in model_forms(model).items():
            for backend in BACKENDS:
                if backend == "tensorrt" and form == "int8-cpu":
                    continue   # TensorRT builds its INT8 engines from the QDQ form
                try:
                    loaded[(form, backend)] = _load(path, backend, form, threads)
                except ModelFileError as exc:
                    rows.append({"model": model.name, "form": form, "backend": backend, "skipped": str(exc)})
        for batch in batches:
            x = random_input(model, batch, rng)
            if x is None:
                continue
            calls = {key: partial(runner.run, x) for key, runner in loaded.items()}
            timed = interleaved_ms({f"{form}|{backend}": call for (form, backend), call in calls.items()},
                                   repeats, warmup)
            medians = {key: statistics.median(ms) for key, ms in timed.items()}
            for key, ms in timed.items():
                form, backend = key.split("|")
                reference = medians.get(f"fp32|{backend}")
                rows.append({"model": model.name, "form": form, "backend": backend, "batch": batch,
                             "median_ms": round(medians[key], 4), "per_item_ms": round(medians[key] / batch, 4),
                             "p10_ms": round(float(np.percentile(ms, 10)), 4),
                             "p90_ms": round(float(np.percentile(ms, 90)), 4),
                             "vs_fp32": None if reference is None else round(medians[key] / reference, 3)})
    return rows
