"""emotion-edge on-device package: feature extraction, runtime, fusion and the daemon.

Nothing under ``edge`` imports torch, ``train`` or ``export``: it must run on a Jetson with only
numpy, OpenCV, python_speech_features/scipy, webrtcvad, PyAV, onnxruntime (or TensorRT),
paho-mqtt and sounddevice.
"""

__version__ = "0.1.0"
