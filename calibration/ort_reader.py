"""The ONNX Runtime side of calibration: a ``CalibrationDataReader`` over a saved calibration set.

``onnxruntime.quantization.quantize_static`` pulls input feeds from the reader until it returns
``None``; ``rewind`` starts again (the entropy and percentile calibrators read the data twice).
All batches have the same size, the largest divisor of the set's size up to the requested one:
the histogram calibrators stack the batches' activations and fail on a shorter last batch.
"""

from __future__ import annotations

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from calibration.builder import CalibrationSet


class CalibrationSetReader(CalibrationDataReader):
    """Feeds ``{input_name: batch}`` of equal batches of at most ``batch_size`` samples, in order."""

    def __init__(self, calibration: CalibrationSet, input_name: str, batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.calibration = calibration
        self.input_name = input_name
        count = len(calibration.inputs)
        self.batch_size = max(size for size in range(1, min(batch_size, count) + 1) if count % size == 0)
        self._next = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        start = self._next
        if start >= len(self.calibration.inputs):
            return None
        self._next = start + self.batch_size
        return {self.input_name: self.calibration.inputs[start : self._next]}

    def rewind(self) -> None:
        self._next = 0

    def __len__(self) -> int:
        return -(-len(self.calibration.inputs) // self.batch_size)
