"""emotion-edge on-device package: feature extraction, runtime, fusion and the daemon.

Nothing under ``edge`` imports torch, ``train`` or ``export``: it must run on a Jetson with only
numpy, OpenCV, python_speech_features/scipy, webrtcvad, PyAV, onnxruntime (or TensorRT),
paho-mqtt and sounddevice. Importing it switches off the dependencies' telemetry
(``edge.privacy``) before any of its modules imports onnxruntime.
"""

from edge.privacy import quiet_dependencies

quiet_dependencies()

__version__ = "0.1.0"
