"""Names the configuration and the runtime share: inference backends, execution providers, precisions."""

BACKENDS = ("auto", "onnxruntime", "tensorrt")
PROVIDERS = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
"""Execution providers by the short names that config and command lines use, with ONNX Runtime's own names."""
PRECISIONS = ("int8", "fp16", "fp32")
