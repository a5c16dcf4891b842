"""Model sidecars: the JSON file beside every model artifact, and the checks made when loading one.

A sidecar says what the model expects and produces: its label list, input name, shape and dtype,
how raw features are normalised (inside the graph: models take raw MFCC windows or 0..255 gray
crops, so that no caller can normalise differently), the feature parameters (MFCC settings, crop size...), the data
and metrics of its training, and the SHA-256 of the artifact it describes. A loader refuses an
artifact whose sidecar is missing, malformed, belongs to other bytes, or disagrees with what the
pipeline will feed it, with a message that names what differs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edge.errors import InputError
from edge.taxonomy import canonical_label

SIDECAR_FORMAT = 1
DETECTOR_KIND = "face_detector"
"""The kind of a face detector's sidecar: boxes and landmarks out, no emotion labels."""


class SidecarError(InputError):
    """A sidecar that is missing, malformed, or does not describe its artifact."""


class SidecarMismatchError(SidecarError):
    """A sidecar whose expectations differ from what the pipeline will feed the model."""


@dataclass(frozen=True)
class ModelSidecar:
    """What a model artifact expects and produces (see the module docstring)."""

    name: str
    kind: str
    labels: tuple[str, ...]
    input_name: str
    input_shape: tuple[int | None, ...]
    outputs: tuple[str, ...]
    sha256: str
    features: dict[str, Any]
    normalisation: dict[str, Any] = field(default_factory=dict)
    input_dtype: str = "float32"
    precision: str = "fp32"
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    format: int = SIDECAR_FORMAT

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"], data["input_shape"], data["outputs"] = (
            list(self.labels),
            list(self.input_shape),
            list(self.outputs),
        )
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str) -> ModelSidecar:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        required = (f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING)
        missing = sorted(name for name in required if name not in data)
        if unknown or missing:
            raise SidecarError(f"{origin}: malformed sidecar (unknown keys {unknown}, missing keys {missing})")
        if data.get("format", SIDECAR_FORMAT) != SIDECAR_FORMAT:
            raise SidecarError(f"{origin}: sidecar format {data['format']} is not the supported {SIDECAR_FORMAT}")
        _check_lists(data, origin)
        values = dict(data)
        values["labels"], values["outputs"] = tuple(data["labels"]), tuple(data["outputs"])
        values["input_shape"] = tuple(data["input_shape"])
        return cls(**values)


def _check_lists(data: dict[str, Any], origin: str) -> None:
    """SidecarError unless labels are distinct known emotions, and outputs and the input shape are well formed."""
    labels, outputs, shape = data["labels"], data["outputs"], data["input_shape"]
    if data.get("kind") == DETECTOR_KIND:
        if labels != []:
            raise SidecarError(f"{origin}: a {DETECTOR_KIND} has no emotion labels (labels must be []), got {labels!r}")
    elif not isinstance(labels, list) or not labels or not all(isinstance(label, str) for label in labels):
        raise SidecarError(f"{origin}: labels must be a non-empty list of emotion names, got {labels!r}")
    try:
        names = [canonical_label(label) for label in labels]
    except ValueError as exc:
        raise SidecarError(f"{origin}: {exc}") from None
    if len(set(names)) != len(names):
        raise SidecarError(f"{origin}: labels name an emotion twice: {labels}")
    if not isinstance(outputs, list) or not all(isinstance(name, str) for name in outputs):
        raise SidecarError(f"{origin}: outputs must be a list of output names, got {outputs!r}")
    if not isinstance(shape, list) or not all(dim is None or (isinstance(dim, int) and dim > 0) for dim in shape):
        raise SidecarError(f"{origin}: input_shape must be a list of positive sizes or null, got {shape!r}")


def sidecar_path(artifact: str | Path) -> Path:
    """``model.onnx`` -> ``model.json``; ``model.int8.onnx`` -> ``model.int8.json``."""
    return Path(artifact).with_suffix(".json")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_sidecar(artifact: str | Path, sidecar: ModelSidecar) -> Path:
    """Write ``sidecar`` beside ``artifact`` (its sha256 must be the artifact's)."""
    if sidecar.sha256 != file_sha256(artifact):
        raise SidecarError(f"{artifact}: the sidecar's sha256 is not this file's")
    path = sidecar_path(artifact)
    path.write_text(json.dumps(sidecar.to_dict(), indent=2, sort_keys=True) + "\n")
    return path


def read_sidecar(artifact: str | Path) -> ModelSidecar:
    """The sidecar of ``artifact``, checked to be well formed and to describe these very bytes."""
    artifact = Path(artifact)
    path = sidecar_path(artifact)
    if not path.is_file():
        raise SidecarError(f"{artifact}: no sidecar {path.name} beside it; re-export the model to create one")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SidecarError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise SidecarError(f"{path}: a sidecar must be a JSON object")
    sidecar = ModelSidecar.from_dict(data, str(path))
    actual = file_sha256(artifact)
    if actual != sidecar.sha256:
        raise SidecarError(
            f"{artifact}: sha256 {actual[:12]}… does not match its sidecar's {sidecar.sha256[:12]}… "
            "(the model file was changed or replaced; re-export it with its sidecar)"
        )
    return sidecar


def lineage(sidecar: ModelSidecar) -> tuple[str, ...]:
    """SHA-256 of the artifact and of the ONNX models it was made from, newest first.

    An FP32 ONNX model has its own checksum only; an INT8 QDQ model adds the FP32 model it was
    quantized from (``source.fp32_sha256``); a TensorRT engine adds the ONNX model it was built from
    (``source.onnx_sha256``) and, for one built from an INT8 model, that model's FP32 source.
    """
    source = sidecar.source
    built_from = source.get("onnx_source")
    candidates = [sidecar.sha256, source.get("onnx_sha256"), source.get("fp32_sha256"),
                  built_from.get("fp32_sha256") if isinstance(built_from, dict) else None]
    return tuple(dict.fromkeys(c for c in candidates if isinstance(c, str)))


def _differences(expected: Any, actual: Any, prefix: str) -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        diffs = []
        for key in sorted(set(expected) | set(actual)):
            name = f"{prefix}.{key}" if prefix else key
            if key not in actual:
                diffs.append(f"{name}: the pipeline feeds {expected[key]!r}, the model does not say")
            elif key not in expected:
                continue
            else:
                diffs.extend(_differences(expected[key], actual[key], name))
        return diffs
    return [] if expected == actual else [f"{prefix}: the model expects {actual!r}, the pipeline feeds {expected!r}"]


def check_features(sidecar: ModelSidecar, expected: dict[str, Any], artifact: str | Path) -> None:
    """Raise SidecarMismatchError when the sidecar's feature parameters differ from ``expected``."""
    diffs = _differences(expected, sidecar.features, "")
    if diffs:
        raise SidecarMismatchError(f"{artifact}: the model does not match the pipeline: " + "; ".join(diffs))
