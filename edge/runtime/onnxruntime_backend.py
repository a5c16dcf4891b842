"""ONNX Runtime backend: CPU here, CUDA or TensorRT execution providers on a Jetson, chosen by config."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edge.config.names import PROVIDERS
from edge.errors import ModelFileError
from edge.runtime.backend import Backend
from edge.sidecar import SidecarMismatchError, read_sidecar

DEFAULT_PROVIDERS = (PROVIDERS["cpu"],)


class OnnxRuntimeBackend(Backend):
    """An ONNX model (fp32 or INT8 QDQ) in an ``onnxruntime.InferenceSession``."""

    def __init__(
        self,
        artifact: str | Path,
        providers: Sequence[str | tuple[str, dict[str, Any]]] = DEFAULT_PROVIDERS,
        threads: int = 0,
        spinning: bool = False,
    ) -> None:
        """``threads``: intra-op threads (0: ONNX Runtime decides); ``spinning``: let them spin-wait between runs
        (ONNX Runtime's default, which costs several times the CPU of each run of a small model)."""
        artifact = Path(artifact)
        if not artifact.is_file():
            raise ModelFileError(f"{artifact}: model file not found")
        super().__init__(artifact, read_sidecar(artifact))
        available = set(ort.get_available_providers())
        names = [p if isinstance(p, str) else p[0] for p in providers]
        unknown = [p for p in names if p not in available]
        if unknown:
            raise ModelFileError(
                f"{artifact}: execution providers {unknown} are not available; have {sorted(available)}"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "1" if spinning else "0")
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(artifact), options, providers=list(providers))
        except Exception as exc:  # onnxruntime raises its own exception types for corrupt models
            raise ModelFileError(f"{artifact}: not a loadable ONNX model ({exc})") from exc
        inputs = self.session.get_inputs()
        outputs = [o.name for o in self.session.get_outputs()]
        if [i.name for i in inputs] != [self.sidecar.input_name] or sorted(outputs) != sorted(self.sidecar.outputs):
            raise SidecarMismatchError(
                f"{artifact}: the graph has inputs {[i.name for i in inputs]} and outputs {outputs}, its sidecar says "
                f"{[self.sidecar.input_name]} and {list(self.sidecar.outputs)}"
            )
        graph_shape = [dim if isinstance(dim, int) else None for dim in inputs[0].shape]
        declared = list(self.sidecar.input_shape)
        if graph_shape != declared:
            raise SidecarMismatchError(
                f"{artifact}: the graph takes input shape {graph_shape}, its sidecar says {declared}"
            )
        logits = next((o for o in self.session.get_outputs() if o.name == "logits"), None)
        width = logits.shape[-1] if logits is not None and logits.shape else None
        if isinstance(width, int) and width != len(self.sidecar.labels):
            raise SidecarMismatchError(
                f"{artifact}: the graph gives {width} logits, its sidecar names {len(self.sidecar.labels)} labels"
            )
        self._output_names = outputs

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        values = self.session.run(self._output_names, {self.sidecar.input_name: self.check_input(batch)})
        return dict(zip(self._output_names, values, strict=True))
