"""Names of the inference backends, execution providers and precisions: one vocabulary for config and runtime."""

BACKENDS = ("auto", "onnxruntime", "tensorrt")
PROVIDERS = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
"""Execution providers by the short names that config and command lines use, with ONNX Runtime's own names."""
PRECISIONS = ("int8", "fp16", "fp32")
