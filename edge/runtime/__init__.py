"""Inference backends behind one small interface (ONNX Runtime now; TensorRT engines on a Jetson)."""
