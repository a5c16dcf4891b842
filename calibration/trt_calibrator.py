"""TensorRT's implicit INT8 calibration (``IInt8EntropyCalibrator2``) reading a saved calibration set.

The implicit path is for TensorRT 8.x boards (JetPack 4.6 / 5); TensorRT 10 deprecated implicit
calibrators in favour of explicit Q/DQ models (``export.quantize``). ``CalibrationBatches`` cuts a
calibration set into the fixed-size batches TensorRT asks for (a last partial batch is left out:
every batch must match the calibration profile's shape). ``entropy_calibrator`` wraps them in the
TensorRT interface: ``get_batch`` copies the next batch into one device buffer and returns its
address; the calibration cache is read from ``cache_path`` when it exists (TensorRT then skips
the batches) and written there after calibration. Name the cache after the model, the set and the
TensorRT version (``export.tensorrt_engine`` does) so a stale cache is never reused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from calibration.builder import CalibrationSet
from edge.errors import InputError
from edge.runtime.cuda_memory import CudaMemory
from edge.runtime.tensorrt_backend import import_tensorrt

log = logging.getLogger(__name__)


class CalibrationBatches:
    """Contiguous float32 batches of exactly ``batch_size`` samples of a calibration set."""

    def __init__(self, calibration: CalibrationSet, batch_size: int) -> None:
        if not 1 <= batch_size <= len(calibration.inputs):
            raise InputError(f"calibration batch size {batch_size} must be in 1..{len(calibration.inputs)} "
                             "(the number of samples in the set)")
        self.calibration = calibration
        self.batch_size = batch_size

    def __len__(self) -> int:
        return len(self.calibration.inputs) // self.batch_size

    def __iter__(self) -> Iterator[np.ndarray]:
        for k in range(len(self)):
            batch = self.calibration.inputs[k * self.batch_size : (k + 1) * self.batch_size]
            yield np.ascontiguousarray(batch, dtype=np.float32)

    @property
    def nbytes(self) -> int:
        return self.batch_size * int(np.prod(self.calibration.inputs.shape[1:])) * 4


def entropy_calibrator(calibration: CalibrationSet, cache_path: str | Path, batch_size: int, cuda: CudaMemory) -> Any:
    """A ``tensorrt.IInt8EntropyCalibrator2`` over ``calibration`` with its cache at ``cache_path``."""
    trt = import_tensorrt()
    batches = CalibrationBatches(calibration, batch_size)
    cache = Path(cache_path)

    base: Any = trt.IInt8EntropyCalibrator2

    class EntropyCalibrator(base):
        def __init__(self) -> None:
            base.__init__(self)
            with cuda.active():
                self.device_input = cuda.alloc(batches.nbytes)
            self.pending = iter(batches)
            self.done = 0

        def get_batch_size(self) -> int:
            return batches.batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = next(self.pending, None)
            if batch is None:
                log.info("calibration: %d batches of %d done", self.done, batches.batch_size)
                return None
            with cuda.active():
                cuda.to_device(self.device_input, batch)
                cuda.synchronize()
            self.done += 1
            return [self.device_input]

        def read_calibration_cache(self) -> bytes | None:
            if cache.is_file():
                log.info("calibration: reusing the cache %s", cache)
                return cache.read_bytes()
            return None

        def write_calibration_cache(self, data: Any) -> None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_bytes(bytes(data))
            log.info("calibration: cache written to %s", cache)

    return EntropyCalibrator()
