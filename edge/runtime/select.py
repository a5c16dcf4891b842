"""Choosing and loading a backend for a model path: ONNX Runtime (CPU, CUDA or TensorRT EP) or a TensorRT engine.

``load_backend(path, models)``, ``models`` being the ``[models]`` section (``backend``, ``providers``,
``threads``, ``spinning``):

* ``"auto"``: an ``.engine`` file runs on TensorRT, an ``.onnx`` file on ONNX Runtime;
* ``"onnxruntime"``: the ONNX model on the execution providers named by ``providers``, in order of
  preference (``tensorrt``, ``cuda``, ``cpu``; CPU is always appended as the fallback). The
  TensorRT execution provider gets an engine cache folder beside the model and FP16 on, and INT8
  on for an INT8 QDQ model, so a Jetson builds its engines once;
* ``"tensorrt"``: an engine file, or for an ``.onnx`` path the engine ``emotion-export engine``
  built from it for this TensorRT version and GPU (``find_engine``), preferring INT8, then FP16,
  then FP32 unless ``precision`` says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge.config.names import PRECISIONS, PROVIDERS
from edge.config.schema import ModelsConfig
from edge.errors import ModelFileError
from edge.runtime.backend import Backend
from edge.runtime.cuda_memory import open_cuda
from edge.runtime.onnxruntime_backend import OnnxRuntimeBackend
from edge.runtime.tensorrt_backend import ENGINE_SUFFIX, TensorRTBackend, engine_filename, import_tensorrt
from edge.sidecar import read_sidecar

ORT_ENGINE_CACHE = "ort_trt_cache"
DEFAULT_MODELS = ModelsConfig()
INT8_SUFFIXES = {"tensorrt": ".int8.onnx", "cpu": ".int8-cpu.onnx"}
"""The INT8 twins of ``<name>.onnx`` that ``emotion-export int8 --form`` writes: QDQ for TensorRT, U8S8 for CPUs."""


def int8_twin(model: str | Path, form: str) -> Path:
    """``speech_cnn.onnx`` -> ``speech_cnn.int8.onnx`` (``tensorrt`` form) or ``speech_cnn.int8-cpu.onnx``."""
    model = Path(model)
    return model.with_name(model.name.removesuffix(".onnx") + INT8_SUFFIXES[form])


def int8_form(models: ModelsConfig) -> str:
    """The INT8 form ``models`` runs: ``tensorrt`` on TensorRT (engines, or its ONNX Runtime provider), else ``cpu``."""
    return "tensorrt" if models.backend == "tensorrt" or "tensorrt" in models.providers else "cpu"


def load_encoder(path: str | Path, models: ModelsConfig = DEFAULT_MODELS, cuda: str = "auto") -> Backend:
    """A speech or face model: ``load_backend`` of ``path``, or with ``models.int8`` of its INT8 twin for this
    backend (an INT8 engine on TensorRT)."""
    path = Path(path)
    if not models.int8 or path.suffix == ENGINE_SUFFIX or path.name.endswith(tuple(INT8_SUFFIXES.values())):
        return load_backend(path, models, cuda=cuda)
    if models.backend == "tensorrt":
        return load_backend(path, models, precision="int8", cuda=cuda)
    form = int8_form(models)
    twin = int8_twin(path, form)
    if not twin.is_file():
        raise ModelFileError(f"models.int8 is on, but {twin} is missing: make it with `emotion-export int8 {path} "
                             f"--form {form} --calibration <calibration set>` (docs/EXPORT.md)")
    return load_backend(twin, models, cuda=cuda)


def ort_providers(model: Path, names: Sequence[str]) -> list[Any]:
    """ONNX Runtime provider entries (with options) for provider short names, CPU last."""
    unknown = [name for name in names if name not in PROVIDERS]
    if unknown:
        raise ModelFileError(f"unknown execution providers {unknown}: choose from {sorted(PROVIDERS)}")
    int8 = read_sidecar(model).precision == "int8"
    entries: list[Any] = []
    for name in (*names, "cpu") if "cpu" not in names else names:
        if name == "tensorrt":
            cache = model.parent / ORT_ENGINE_CACHE
            entries.append((PROVIDERS[name], {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
                                              "trt_fp16_enable": True, "trt_int8_enable": int8}))
        else:
            entries.append(PROVIDERS[name])
    return entries


def find_engine(model: Path, precision: str | None = None, cuda: str = "auto") -> Path:
    """The engine built from ``model`` (or its INT8 sibling) for this TensorRT and GPU."""
    trt = import_tensorrt()
    memory = open_cuda(cuda)
    try:
        gpu = memory.gpu()
    finally:
        memory.close()
    sources = [model, int8_twin(model, "tensorrt")]
    candidates = []
    for source in (s for s in sources if s.is_file()):
        sidecar = read_sidecar(source)
        for wanted in (precision,) if precision else PRECISIONS:
            if (wanted == "int8") == (sidecar.precision == "int8"):
                candidates.append((PRECISIONS.index(wanted),
                                   source.parent / engine_filename(sidecar.name, wanted, trt.__version__, gpu,
                                                                   sidecar.sha256)))
    for _, path in sorted(candidates):
        if path.is_file():
            return path
    wanted_text = precision or "any precision"
    raise ModelFileError(
        f"{model}: no TensorRT engine ({wanted_text}) built for TensorRT {trt.__version__} on {gpu.name} "
        f"(sm {gpu.compute_capability}); build one with `emotion-export engine {model}"
        f"{' --precision ' + precision if precision else ''}`"
    )


def load_backend(path: str | Path, models: ModelsConfig = DEFAULT_MODELS, precision: str | None = None,
                 cuda: str = "auto") -> Backend:
    """The backend running the model at ``path`` on the backend, providers and threads of ``[models]``
    (see the module docstring)."""
    path, backend = Path(path), models.backend
    if precision is not None and precision not in PRECISIONS:
        raise ModelFileError(f"precision {precision!r} is not one of {PRECISIONS}")
    is_engine = path.suffix == ENGINE_SUFFIX
    if backend == "onnxruntime" and is_engine:
        raise ModelFileError(f"{path}: a TensorRT engine cannot run on ONNX Runtime; give the .onnx model")
    if backend == "tensorrt" or is_engine:
        return TensorRTBackend(path if is_engine else find_engine(path, precision, cuda), cuda=cuda)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    return OnnxRuntimeBackend(path, providers=ort_providers(path, models.providers), threads=models.threads,
                              spinning=models.spinning)
