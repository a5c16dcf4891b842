"""TensorRT backend: a serialized engine with device buffers, for TensorRT 8.0 to 10.x.

An engine only runs with the TensorRT version and on the GPU it was built with, and only
describes the model it was built from. Its sidecar (written by ``emotion-export engine``) records
those facts in ``source``: ``tensorrt`` (version), ``gpu`` and ``compute_capability``, ``onnx``
and ``onnx_sha256`` (the model it was built from), next to the usual labels, input shape and
feature parameters. ``TensorRTBackend`` refuses, before deserializing, an engine whose sidecar
does not match these bytes, this TensorRT or this GPU, or whose source model beside it has
changed since, each with a message saying what differs and the command that rebuilds it; then it
refuses an engine whose inputs and outputs disagree with its sidecar. Engine file names are
keyed by the same facts (``engine_filename``), as jetson-inference does, so engines built on
different boards or TensorRT versions never overwrite each other.

TensorRT's Python API changed twice in the supported range: engines of TensorRT 8.0-8.4 are
driven through bindings (``execute_async_v2``), 8.5 and later through named tensors
(``execute_async_v3``; 10.0 removed the bindings). ``tensorrt`` and the CUDA binding are imported
when a backend is created, never at module import, so this module loads without them.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import InputError, ModelFileError
from edge.runtime.backend import Backend
from edge.runtime.cuda_memory import CudaMemory, GpuInfo, open_cuda
from edge.sidecar import ModelSidecar, SidecarError, SidecarMismatchError, file_sha256, read_sidecar

ENGINE_SUFFIX = ".engine"
ENGINE_FACTS = ("tensorrt", "gpu", "compute_capability", "onnx", "onnx_sha256")


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or ModelFileError saying how to get it."""
    try:
        return importlib.import_module("tensorrt")
    except ImportError as exc:
        raise ModelFileError(
            "TensorRT's Python bindings are not installed: on a Jetson they come with JetPack "
            "(`sudo apt install python3-libnvinfer`; create the virtualenv with --system-site-packages); "
            f"elsewhere use the onnxruntime backend ({exc})"
        ) from exc


def engine_filename(name: str, precision: str, tensorrt_version: str, gpu: GpuInfo, source_sha256: str) -> str:
    """``<name>.<precision>.trt<version>.sm<cc>.<sha12 of the source model>.engine``."""
    sm = gpu.compute_capability.replace(".", "")
    return f"{name}.{precision}.trt{tensorrt_version}.sm{sm}.{source_sha256[:12]}{ENGINE_SUFFIX}"


def rebuild_command(artifact: Path, sidecar: ModelSidecar) -> str:
    """The command that rebuilds ``artifact`` on this device."""
    onnx = artifact.parent / str(sidecar.source.get("onnx", f"{sidecar.name}.onnx"))
    return f"emotion-export engine {onnx} --precision {sidecar.precision} --out {artifact.parent}"


def check_engine_target(sidecar: ModelSidecar, artifact: Path, tensorrt_version: str, gpu: GpuInfo) -> None:
    """Raise SidecarMismatchError unless the engine was built for this TensorRT, this GPU and its current source."""
    missing = [key for key in ENGINE_FACTS if key not in sidecar.source]
    if missing:
        raise SidecarError(f"{artifact}: not a TensorRT engine sidecar (its source lacks {missing}); "
                           f"build the engine with `{rebuild_command(artifact, sidecar)}`")
    built = sidecar.source
    differences = [
        f"{what}: built for {built[key]!r}, this device has {here!r}"
        for what, key, here in (
            ("TensorRT version", "tensorrt", tensorrt_version),
            ("GPU", "gpu", gpu.name),
            ("compute capability", "compute_capability", gpu.compute_capability),
        )
        if str(built[key]) != here
    ]
    onnx = artifact.parent / str(built["onnx"])
    if onnx.is_file() and file_sha256(onnx) != built["onnx_sha256"]:
        differences.append(f"source model {onnx.name} has changed since the engine was built")
    if differences:
        raise SidecarMismatchError(
            f"{artifact}: engine does not fit this device ({'; '.join(differences)}); serialized engines are "
            f"specific to one TensorRT version and GPU: rebuild it with `{rebuild_command(artifact, sidecar)}`"
        )


class _TensorApi:
    """Named I/O tensors and ``execute_async_v3`` (TensorRT 8.5 and later)."""

    def __init__(self, trt: Any, engine: Any) -> None:
        self.trt, self.engine = trt, engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.engine.get_tensor_shape(name))

    def dtype(self, name: str) -> np.dtype:
        return np.dtype(self.trt.nptype(self.engine.get_tensor_dtype(name)))

    def max_shape(self, name: str) -> tuple[int, ...]:
        shape = self.shape(name)
        return shape if shape[0] > 0 else tuple(self.engine.get_tensor_profile_shape(name, 0)[2])

    def run(self, context: Any, shape: tuple[int, ...], addresses: dict[str, int], stream: int) -> dict[str, tuple]:
        context.set_input_shape(self.inputs[0], shape)
        for name, address in addresses.items():
            context.set_tensor_address(name, address)
        if not context.execute_async_v3(stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        return {name: tuple(context.get_tensor_shape(name)) for name in self.outputs}


class _BindingApi:
    """Bindings by index and ``execute_async_v2`` (TensorRT 8.0-8.4)."""

    def __init__(self, trt: Any, engine: Any) -> None:
        self.trt, self.engine = trt, engine
        self._order = [engine.get_binding_name(i) for i in range(engine.num_bindings)]
        self.inputs = [n for i, n in enumerate(self._order) if engine.binding_is_input(i)]
        self.outputs = [n for n in self._order if n not in self.inputs]

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.engine.get_binding_shape(self._order.index(name)))

    def dtype(self, name: str) -> np.dtype:
        return np.dtype(self.trt.nptype(self.engine.get_binding_dtype(self._order.index(name))))

    def max_shape(self, name: str) -> tuple[int, ...]:
        shape = self.shape(name)
        return shape if shape[0] > 0 else tuple(self.engine.get_profile_shape(0, self._order.index(name))[2])

    def run(self, context: Any, shape: tuple[int, ...], addresses: dict[str, int], stream: int) -> dict[str, tuple]:
        context.set_binding_shape(self._order.index(self.inputs[0]), shape)
        if not context.execute_async_v2([addresses[name] for name in self._order], stream):
            raise RuntimeError("TensorRT execute_async_v2 failed")
        return {name: tuple(context.get_binding_shape(self._order.index(name))) for name in self.outputs}


class TensorRTBackend(Backend):
    """A serialized TensorRT engine (FP32, FP16 or INT8) run on device 0; see the module docstring."""

    def __init__(self, artifact: str | Path, cuda: str = "auto") -> None:
        artifact = Path(artifact)
        if not artifact.is_file():
            raise ModelFileError(f"{artifact}: engine file not found")
        super().__init__(artifact, read_sidecar(artifact))
        trt = import_tensorrt()
        self.cuda: CudaMemory = open_cuda(cuda)
        check_engine_target(self.sidecar, artifact, trt.__version__, self.cuda.gpu())
        logger = trt.Logger(trt.Logger.ERROR)
        with self.cuda.active():
            self.engine = trt.Runtime(logger).deserialize_cuda_engine(artifact.read_bytes())
            if self.engine is None:
                raise ModelFileError(f"{artifact}: TensorRT cannot deserialize this engine (truncated or corrupt); "
                                     f"rebuild it with `{rebuild_command(artifact, self.sidecar)}`")
            tensor_api = hasattr(self.engine, "num_io_tensors")
            self.io: _TensorApi | _BindingApi = (_TensorApi if tensor_api else _BindingApi)(trt, self.engine)
            self._check_io()
            self.max_batch = self.io.max_shape(self.io.inputs[0])[0]
            self.context = self.engine.create_execution_context()
            self._buffers = {
                name: self.cuda.alloc(self._sample_bytes(name) * self.max_batch)
                for name in (*self.io.inputs, *self.io.outputs)
            }

    def _sample_bytes(self, name: str) -> int:
        return int(np.prod(self.io.shape(name)[1:])) * self.io.dtype(name).itemsize

    def _check_io(self) -> None:
        declared_shape = [None, *self.sidecar.input_shape[1:]]
        engine_shape = [None, *self.io.shape(self.io.inputs[0])[1:]] if self.io.inputs else []
        if self.io.inputs != [self.sidecar.input_name] or sorted(self.io.outputs) != sorted(self.sidecar.outputs) \
                or engine_shape != declared_shape:
            raise SidecarMismatchError(
                f"{self.artifact}: the engine has inputs {self.io.inputs} {engine_shape} and outputs "
                f"{self.io.outputs}, "
                f"its sidecar says {[self.sidecar.input_name]} {declared_shape} and {list(self.sidecar.outputs)}"
            )

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        batch = self.check_input(batch)
        parts = [self._run(batch[i : i + self.max_batch]) for i in range(0, len(batch), self.max_batch)]
        return {name: np.concatenate([part[name] for part in parts]) for name in self.io.outputs}

    def _run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        with self.cuda.active():
            self.cuda.to_device(self._buffers[self.io.inputs[0]], batch)
            shapes = self.io.run(self.context, batch.shape, self._buffers, self.cuda.stream)
            outputs = {name: np.empty(shape, dtype=self.io.dtype(name)) for name, shape in shapes.items()}
            for name, host in outputs.items():
                self.cuda.to_host(host, self._buffers[name])
            self.cuda.synchronize()
        if any(host.shape[0] != len(batch) for host in outputs.values()):
            raise InputError(f"{self.artifact.name}: the engine returned {[h.shape for h in outputs.values()]} "
                             f"for a batch of {len(batch)}")
        return outputs

    def close(self) -> None:
        """Free the device buffers."""
        self.cuda.close()
