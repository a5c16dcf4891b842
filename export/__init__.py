"""Export: torch models to ONNX with sidecars and parity checks (INT8 and TensorRT build on these)."""
