"""The shipped default models (ONNX + JSON sidecars, YuNet, MODEL_CARD.md); ``loading`` loads those of a run."""

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
SPEECH_MODEL = MODELS_DIR / "speech_cnn.onnx"
FACE_MODEL = MODELS_DIR / "face_stn_cnn.onnx"
FUSION_MODEL = MODELS_DIR / "fusion_head.onnx"
FUSION_GATE = MODELS_DIR / "fusion_gate.json"
DETECTOR_MODEL = MODELS_DIR / "face_detection_yunet_2023mar.onnx"


def _shipped_models(speech: Path | None, face: Path | None) -> bool:
    pairs = ((speech, SPEECH_MODEL), (face, FACE_MODEL))
    return all(path is None or Path(path).resolve() == default for path, default in pairs)


def shipped_fusion_head(speech: Path | None, face: Path | None) -> Path | None:
    """The shipped fusion head when ``speech`` and ``face`` are the shipped models (None counts as shipped).

    The head was exported for those two encoders (its sidecar records their checksums); other
    encoders need their own head, so there is no default for them.
    """
    return FUSION_MODEL if _shipped_models(speech, face) and FUSION_MODEL.is_file() else None


def shipped_fusion_gate(speech: Path | None, face: Path | None) -> Path | None:
    """The shipped reliability gate when ``speech`` and ``face`` are the shipped models (None counts as shipped).

    The gate was fitted on the shipped face model's posteriors and on out-of-fold posteriors of the
    shipped speech recipe: how far other models can be trusted it does not know.
    """
    return FUSION_GATE if _shipped_models(speech, face) and FUSION_GATE.is_file() else None
