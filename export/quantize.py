"""FP32 ONNX -> INT8 QDQ ONNX, in the form TensorRT's explicit quantization consumes or the one ONNX Runtime
runs fast on a CPU, with its sidecar.

``quantize_qdq`` runs ONNX Runtime's static quantizer on a calibration set. The ``tensorrt`` form
(``<name>.int8.onnx``) has the settings TensorRT requires (its ONNX parser accepts Q/DQ with int8
and zero-point 0 only) and recommends (Q/DQ layer placement in the TensorRT developer guide):

* symmetric int8 activations and weights, zero-point 0; weights per output channel (axis 0);
* Q/DQ on the inputs of the weighted layers (Conv, Gemm) only: their outputs, the biases, the
  spatial transformer's grid (MatMul, GridSample) and the graph outputs stay float, so TensorRT
  fuses DQ -> Conv -> ReLU and chooses where to requantize;
* the weighted layers that read the model input with no weighted layer in between stay float
  (``input_layers``; TensorRT runs them in FP16): the inputs are raw features, standardised MFCCs
  and 0..255 pixels, that 8 bits represent poorly, and those layers are a small share of the work
  (speech: the first conv, 11 % of the multiply-adds; face: the first conv of the spatial
  transformer and of the classifier, 4 %). On the worst speech fold this lifts INT8/FP32 window
  agreement from 96.7 % to 98.2 % (docs/EXPORT.md);
* ``quant_pre_process`` (shape inference, constant folding) first, as ONNX Runtime advises.

ONNX Runtime's CPU kernels cannot fuse that form: with the layer outputs left float, each Conv runs
in float after dequantizing its inputs, slower than the FP32 model. The ``cpu`` form
(``<name>.int8-cpu.onnx``) is the one ONNX Runtime recommends for x86 and ARM CPUs: asymmetric
uint8 activations and symmetric int8 weights per channel (U8S8), with Q/DQ on the layer outputs as
well and around ReLU and max pooling (``OP_TYPES``), which ONNX Runtime fuses into integer
convolutions with the ReLU folded in, uint8 pooling and integer matrix products (VNNI and dot-product
instructions where the CPU has them). The same weighted layers stay float in both forms.

``check_qdq`` verifies those properties on the written graph and raises ``ModelFileError`` naming
any tensor that breaks them. The result is ``<name>.int8.onnx`` with a sidecar copied from the
FP32 one: precision ``int8``, its own checksum, and a ``source`` saying what it was quantized from,
with which settings and on which calibration set.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
from onnx import numpy_helper
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from calibration.builder import CalibrationSet
from calibration.ort_reader import CalibrationSetReader
from edge.errors import InputError, ModelFileError
from edge.fusion.head import FUSION_KIND
from edge.runtime.select import INT8_SUFFIXES, int8_twin
from edge.sidecar import file_sha256, read_sidecar, write_sidecar

# Activation ranges: the calibration set's min/max, or its 99.999th percentile (2048-bin histogram;
# the default: it agreed more often with FP32 on both models, see docs/EXPORT.md).
# ONNX Runtime's entropy method is left out: quantize_static runs it with 128 histogram bins for
# 128 quantized bins, which leaves one candidate threshold, the min-max range (measured: the same
# scales as minmax). TensorRT's own entropy calibrator is the implicit path (calibration/trt_calibrator.py).
METHODS = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile}
FORMS = tuple(INT8_SUFFIXES)
TENSORRT_EXTRA: dict[str, Any] = {
    "ActivationSymmetric": True,
    "WeightSymmetric": True,
    "QuantizeBias": False,
    "OpTypesToExcludeOutputQuantization": ["Conv", "Gemm"],
}
CPU_EXTRA: dict[str, Any] = {"ActivationSymmetric": False, "WeightSymmetric": True}
WEIGHTED = ("Conv", "Gemm")
# The CPU form also puts Q/DQ around ReLU and max pooling, so that ONNX Runtime folds each ReLU into
# the QLinearConv before it and pools in uint8 instead of leaving the graph for float between layers
# (measured on the speech CNN, batch 1: INT8/FP32 0.50 against 0.59 with Q/DQ on Conv and Gemm only).
OP_TYPES = {"tensorrt": WEIGHTED, "cpu": (*WEIGHTED, "MaxPool", "Relu")}


@dataclass(frozen=True)
class QuantizeSettings:
    """The INT8 form, how activations are calibrated and which layers get Q/DQ on their inputs; ``op_types``
    and ``extra`` default to the form's (``OP_TYPES``, and its ONNX Runtime quantizer options)."""

    form: str = "tensorrt"
    method: str = "percentile"
    op_types: tuple[str, ...] = ()
    float_input_layers: bool = True
    per_channel: bool = True
    batch_size: int = 32
    extra: dict[str, Any] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"calibration method {self.method!r} is not one of {sorted(METHODS)}")
        if self.form not in FORMS:
            raise InputError(f"INT8 form {self.form!r} is not one of {list(FORMS)}")
        if self.extra is None:
            object.__setattr__(self, "extra", dict(TENSORRT_EXTRA if self.form == "tensorrt" else CPU_EXTRA))
        if not self.op_types:
            object.__setattr__(self, "op_types", OP_TYPES[self.form])

    @property
    def activation_type(self) -> QuantType:
        return QuantType.QInt8 if self.form == "tensorrt" else QuantType.QUInt8

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "op_types": list(self.op_types)}


@dataclass(frozen=True)
class QdqSummary:
    """What ``check_qdq`` found: Q/DQ node counts and the weights quantized per channel."""

    quantize_nodes: int
    dequantize_nodes: int
    per_channel_weights: tuple[str, ...]
    float_layers: tuple[str, ...]  # Conv, Gemm and MatMul nodes left in float

    def to_dict(self) -> dict[str, Any]:
        return {"quantize_nodes": self.quantize_nodes, "dequantize_nodes": self.dequantize_nodes,
                "per_channel_weights": len(self.per_channel_weights), "float_layers": list(self.float_layers)}


def int8_path(fp32_path: str | Path, form: str = "tensorrt") -> Path:
    """``speech_cnn.onnx`` -> ``speech_cnn.int8.onnx`` (``tensorrt`` form) or ``speech_cnn.int8-cpu.onnx``."""
    return int8_twin(fp32_path, form)


def _load_graph(path: Path) -> onnx.ModelProto:
    try:
        return onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and others for damaged files
        raise ModelFileError(f"{path}: not a readable ONNX model ({exc})") from exc


def check_qdq(path: str | Path, form: str = "tensorrt") -> QdqSummary:
    """Check that a QDQ model is quantized (weights per output channel) and, in the ``tensorrt`` form, what
    TensorRT's explicit quantization accepts (int8, zero-point 0); summarise it."""
    path = Path(path)
    model = _load_graph(path)
    initializers = {i.name: i for i in model.graph.initializer}
    problems: list[str] = []
    per_channel: list[str] = []
    counts = {"QuantizeLinear": 0, "DequantizeLinear": 0}
    for node in model.graph.node:
        if node.op_type not in counts:
            continue
        counts[node.op_type] += 1
        if len(node.input) < 3 or node.input[2] not in initializers:
            problems.append(f"{node.name}: no constant zero-point")
            continue
        zero_point = numpy_helper.to_array(initializers[node.input[2]])
        if form == "tensorrt" and (zero_point.dtype != np.int8 or np.any(zero_point != 0)):
            problems.append(f"{node.name}: zero-point {zero_point.dtype} {zero_point.ravel()[:4]} "
                            "(TensorRT needs int8 0)")
        axis = next((a.i for a in node.attribute if a.name == "axis"), None)
        if node.op_type == "DequantizeLinear" and node.input[0] in initializers and zero_point.size > 1:
            if axis != 0:
                problems.append(f"{node.name}: weights quantized along axis {axis}, not the output channels (0)")
            per_channel.append(node.input[0])
    if not counts["QuantizeLinear"]:
        problems.append("no QuantizeLinear nodes: the model is not quantized")
    if problems:
        what = "a TensorRT-ready" if form == "tensorrt" else "an INT8"
        raise ModelFileError(f"{path}: not {what} QDQ model: " + "; ".join(problems))
    quantized = {node.output[0] for node in model.graph.node if node.op_type == "DequantizeLinear"}
    float_layers = tuple(node.name for node in model.graph.node if node.op_type in ("Conv", "Gemm", "MatMul")
                         and not all(name in quantized for name in node.input[:2]))
    return QdqSummary(quantize_nodes=counts["QuantizeLinear"], dequantize_nodes=counts["DequantizeLinear"],
                      per_channel_weights=tuple(per_channel), float_layers=float_layers)


def input_layers(model: onnx.ModelProto, weighted: Sequence[str]) -> list[str]:
    """Names of the ``weighted`` nodes fed by a graph input with no other weighted node in between."""
    raw = {i.name for i in model.graph.input} - {i.name for i in model.graph.initializer}
    found = []
    for node in model.graph.node:  # ONNX graphs are topologically sorted
        if not any(name in raw for name in node.input):
            continue
        if node.op_type in weighted:
            found.append(node.name)
        else:
            raw.update(node.output)
    return found


def _drop_unused_opsets(path: Path) -> None:
    """Remove the opset imports the pre-processing added for domains no node uses."""
    model = onnx.load(str(path))
    used = {node.domain for node in model.graph.node} | {""}
    kept = [opset for opset in model.opset_import if opset.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    onnx.save(model, str(path))


def quantize_qdq(
    fp32_path: str | Path,
    calibration: CalibrationSet,
    out_path: str | Path | None = None,
    settings: QuantizeSettings | None = None,
) -> Path:
    """Write the INT8 QDQ model of ``fp32_path`` in the settings' form (default path ``int8_path``) and its sidecar."""
    settings = settings or QuantizeSettings()
    fp32_path = Path(fp32_path)
    out = Path(out_path) if out_path is not None else int8_path(fp32_path, settings.form)
    if not fp32_path.is_file():
        raise ModelFileError(f"{fp32_path}: model file not found")
    source = read_sidecar(fp32_path)
    if source.precision != "fp32":
        raise InputError(f"{fp32_path}: precision {source.precision!r}; quantize the fp32 model")
    if source.kind == FUSION_KIND:
        raise InputError(f"{fp32_path}: the fusion head stays FP32 (one fc layer over two embeddings: INT8 would "
                         "save nothing and cost accuracy; docs/EXPORT.md); TensorRT builds it in FP16 or FP32")
    if calibration.kind != source.kind:
        raise InputError(f"{fp32_path}: a {source.kind} model cannot be calibrated on a {calibration.kind} set")
    if tuple(calibration.inputs.shape[1:]) != tuple(source.input_shape[1:]):
        raise InputError(f"{fp32_path}: takes {list(source.input_shape)}, the calibration inputs are "
                         f"{list(calibration.inputs.shape)}")
    _load_graph(fp32_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as work:
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))
        kept_float = input_layers(onnx.load(str(prepared)), WEIGHTED) if settings.float_input_layers else []
        quantize_static(
            str(prepared), str(out), CalibrationSetReader(calibration, source.input_name, settings.batch_size),
            quant_format=QuantFormat.QDQ, activation_type=settings.activation_type, weight_type=QuantType.QInt8,
            per_channel=settings.per_channel, op_types_to_quantize=list(settings.op_types),
            nodes_to_exclude=kept_float, calibrate_method=METHODS[settings.method],
            extra_options=dict(settings.extra or {}),
        )
    _drop_unused_opsets(out)
    summary = check_qdq(out, settings.form)
    sidecar = replace(
        source,
        sha256=file_sha256(out),
        precision="int8",
        source={
            "quantized_from": fp32_path.name,
            "fp32_sha256": source.sha256,
            "fp32_source": source.source,
            "quantizer": "onnxruntime.quantization.quantize_static (QDQ)",
            "form": settings.form,
            "onnxruntime": onnxruntime.__version__,
            "settings": settings.to_dict(),
            "qdq": summary.to_dict(),
            "calibration": {"count": len(calibration.inputs), "seed": calibration.seed,
                            "per_class": calibration.per_class, "sha256": calibration.sha256(),
                            "source": calibration.source},
        },
    )
    write_sidecar(out, sidecar)
    return out





