"""What the pipeline feeds each model: the feature settings its sidecar pins, checked against the pipeline.

The feature parameters (MFCC and VAD settings for speech, the crop alignment for faces) are read
from each model's sidecar, so the device computes exactly the features the model was trained on;
a sidecar that names settings this code does not know is refused with a message naming them.
"""

from __future__ import annotations

from typing import Any

from edge.features.alignment import AlignParams
from edge.features.mfcc import MfccParams
from edge.features.vad import VadParams
from edge.runtime.backend import Backend
from edge.sidecar import SidecarMismatchError, check_features
from edge.taxonomy import EMOTIONS, to_emotion7


def _params(model: Backend, section: str, cls: Any) -> Any:
    values = model.sidecar.features.get(section)
    if not isinstance(values, dict):
        raise SidecarMismatchError(f"{model.artifact}: its sidecar does not state the {section} feature settings")
    try:
        return cls(**values)
    except TypeError as exc:
        raise SidecarMismatchError(f"{model.artifact}: {section} settings this pipeline cannot use: {exc}") from exc


def _check_kind(model: Backend, kind: str) -> None:
    if model.sidecar.kind != kind:
        raise SidecarMismatchError(f"{model.artifact}: this is a {model.sidecar.kind} model, not a {kind} model "
                                   f"(check models.{kind})")


def speech_features(model: Backend) -> tuple[MfccParams, VadParams]:
    """The MFCC and VAD settings the speech model was trained with (checked against its sidecar)."""
    _check_kind(model, "speech")
    mfcc, vad = _params(model, "mfcc", MfccParams), _params(model, "vad", VadParams)
    check_features(model.sidecar, {"mfcc": mfcc.to_dict(), "vad": vad.to_dict()}, model.artifact)
    _check_input(model, (1 + mfcc.delta_order, mfcc.frames_per_window, mfcc.numcep), "its MFCC settings")
    return mfcc, vad


def face_features(model: Backend) -> AlignParams:
    """The crop alignment the face model was trained with (checked against its sidecar)."""
    _check_kind(model, "face")
    align = _params(model, "align", AlignParams)
    check_features(model.sidecar, {"align": align.to_dict()}, model.artifact)
    _check_input(model, (1, align.crop_size, align.crop_size), f"its crop size {align.crop_size}")
    unknown = [label for label in model.sidecar.labels if to_emotion7(label) not in EMOTIONS]
    if unknown:
        raise SidecarMismatchError(f"{model.artifact}: labels {unknown} have no place in the taxonomy {list(EMOTIONS)}")
    return align


def _check_input(model: Backend, expected: tuple[int, ...], what: str) -> None:
    """The model takes (batch, *expected): what the pipeline cuts from ``what``."""
    if tuple(model.sidecar.input_shape[1:]) != expected:
        raise SidecarMismatchError(f"{model.artifact}: the model takes {list(model.sidecar.input_shape)}, but "
                                   f"{what} give (batch, {', '.join(map(str, expected))})")
