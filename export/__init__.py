"""Export: torch models to ONNX with sidecars and parity checks (INT8 and TensorRT build on these)."""

import edge  # noqa: F401,E402  (edge.privacy: dependency telemetry off before onnxruntime is imported)
