"""Where the shipped default models live (ONNX + JSON sidecars, the YuNet detector, MODEL_CARD.md)."""

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
SPEECH_MODEL = MODELS_DIR / "speech_cnn.onnx"
FACE_MODEL = MODELS_DIR / "face_stn_cnn.onnx"
