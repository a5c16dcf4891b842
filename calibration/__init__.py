"""Calibration sets for INT8 quantization: builder, ONNX Runtime reader, TensorRT 8.x calibrator."""
