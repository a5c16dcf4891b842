"""Calibration sets for INT8 quantization: builder, ONNX Runtime reader, TensorRT 8.x calibrator."""

import edge  # noqa: F401,E402  (edge.privacy: dependency telemetry off before onnxruntime is imported)
