"""The interface every inference backend implements, and the input checks they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from edge.errors import InputError
from edge.sidecar import ModelSidecar


class Backend(ABC):
    """A loaded model: ``run`` maps a batch of inputs to the named outputs of its sidecar."""

    def __init__(self, artifact: Path, sidecar: ModelSidecar) -> None:
        self.artifact = artifact
        self.sidecar = sidecar

    def check_input(self, batch: np.ndarray) -> np.ndarray:
        """``batch`` as a contiguous array of the sidecar's dtype, or InputError saying what is wrong."""
        expected = self.sidecar.input_shape
        if batch.ndim != len(expected) or any(
            want is not None and want != got for want, got in zip(expected, batch.shape, strict=True)
        ):
            wanted = "x".join("N" if dim is None else str(dim) for dim in expected)
            raise InputError(f"{self.artifact.name}: input of shape {batch.shape} given, the model takes {wanted}")
        if len(batch) == 0:
            raise InputError(f"{self.artifact.name}: an empty batch was given")
        return np.ascontiguousarray(batch, dtype=np.dtype(self.sidecar.input_dtype))

    @abstractmethod
    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs by name (``logits`` and ``embedding``) for a batch shaped as the sidecar says."""
