"""CUDA device memory, streams and device facts for the TensorRT backend and calibrator.

Two bindings are supported behind one small class: ``cuda-python`` (``cuda.bindings.runtime``, or
``cuda.cudart`` in releases before 12.6; NVIDIA's TensorRT 8.6/10 samples use it) and ``pycuda``
(the usual choice on JetPack 4.x/5.x). ``open_cuda("auto")`` takes cuda-python when it imports,
else pycuda. Neither is a pip dependency of this project: on a Jetson they come from JetPack or
``pip install cuda-python`` / ``pip install pycuda``. Pointers and stream handles are plain ints,
as TensorRT's Python API takes them. Copies are ordered with the stream's work (``to_host`` after
the work queued before it); ``synchronize`` waits for all of it. Work with the memory inside
``with cuda.active():``: pycuda needs the device's primary context (the one TensorRT's runtime
uses) current in the calling thread.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.errors import ModelFileError

CUDA_APIS = ("auto", "cuda-python", "pycuda")


@dataclass(frozen=True)
class GpuInfo:
    """The CUDA device an engine runs on (engines are specific to it)."""

    name: str
    compute_capability: str  # "major.minor", e.g. "8.7" for Orin, "5.3" for Nano


class CudaMemory:
    """Allocation, copies and one stream on device 0 through cuda-python or pycuda."""

    def __init__(self, api: str) -> None:
        self.api = api
        if api == "cuda-python":
            try:
                self._rt: Any = importlib.import_module("cuda.bindings.runtime")
            except ImportError:
                self._rt = importlib.import_module("cuda.cudart")
            self._stream: Any = self._check(self._rt.cudaStreamCreate())
            self.stream = int(self._stream)
        else:
            driver = importlib.import_module("pycuda.driver")
            driver.init()
            self._driver: Any = driver
            self._context = driver.Device(0).retain_primary_context()
            with self.active():
                self._stream = driver.Stream()
            self.stream = int(self._stream.handle)
        self._allocations: dict[int, Any] = {}

    @contextmanager
    def active(self) -> Iterator[None]:
        """Make the device context current in this thread (pycuda); cuda-python needs nothing."""
        if self.api == "pycuda":
            self._context.push()
            try:
                yield
            finally:
                self._driver.Context.pop()
        else:
            yield

    def _check(self, result: tuple[Any, ...]) -> Any:
        error, *values = result
        if int(error) != 0:
            message = self._rt.cudaGetErrorString(error)
            text = message[1] if isinstance(message, tuple) else message
            raise RuntimeError(f"CUDA error {int(error)}: {text.decode() if isinstance(text, bytes) else text}")
        return values[0] if len(values) == 1 else tuple(values)

    def gpu(self) -> GpuInfo:
        if self.api == "cuda-python":
            props = self._check(self._rt.cudaGetDeviceProperties(0))
            name = props.name.split(b"\0", 1)[0].decode() if isinstance(props.name, bytes) else str(props.name)
            return GpuInfo(name=name, compute_capability=f"{props.major}.{props.minor}")
        device = self._driver.Device(0)
        major, minor = device.compute_capability()
        return GpuInfo(name=str(device.name()), compute_capability=f"{major}.{minor}")

    def alloc(self, nbytes: int) -> int:
        if self.api == "cuda-python":
            pointer = int(self._check(self._rt.cudaMalloc(nbytes)))
            self._allocations[pointer] = pointer
        else:
            allocation = self._driver.mem_alloc(nbytes)
            pointer = int(allocation)
            self._allocations[pointer] = allocation
        return pointer

    def to_device(self, pointer: int, host: np.ndarray) -> None:
        host = np.ascontiguousarray(host)
        if self.api == "cuda-python":
            kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
            self._check(self._rt.cudaMemcpyAsync(pointer, host.ctypes.data, host.nbytes, kind, self._stream))
        else:  # pycuda's async copies need page-locked host memory: copy synchronously instead
            self._driver.memcpy_htod(pointer, host)

    def to_host(self, host: np.ndarray, pointer: int) -> None:
        if self.api == "cuda-python":
            kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
            self._check(self._rt.cudaMemcpyAsync(host.ctypes.data, pointer, host.nbytes, kind, self._stream))
        else:
            self._stream.synchronize()
            self._driver.memcpy_dtoh(host, pointer)

    def synchronize(self) -> None:
        if self.api == "cuda-python":
            self._check(self._rt.cudaStreamSynchronize(self._stream))
        else:
            self._stream.synchronize()

    def close(self) -> None:
        """Free every allocation and the stream."""
        with self.active():
            for pointer, allocation in self._allocations.items():
                if self.api == "cuda-python":
                    self._rt.cudaFree(pointer)
                else:
                    allocation.free()
            self._allocations.clear()
            if self.api == "cuda-python":
                self._rt.cudaStreamDestroy(self._stream)


def open_cuda(api: str = "auto") -> CudaMemory:
    """A ``CudaMemory`` through ``api`` ("auto": cuda-python if installed, else pycuda)."""
    if api not in CUDA_APIS:
        raise ValueError(f"CUDA binding {api!r} is not one of {CUDA_APIS}")
    candidates = ("cuda-python", "pycuda") if api == "auto" else (api,)
    errors = []
    for candidate in candidates:
        try:
            return CudaMemory(candidate)
        except ImportError as exc:
            errors.append(f"{candidate}: {exc}")
    raise ModelFileError(
        "no CUDA Python binding: install cuda-python (`pip install cuda-python` matching the CUDA of "
        "your JetPack) or pycuda (`pip install pycuda`); " + "; ".join(errors)
    )
