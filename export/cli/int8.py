"""``emotion-export int8``: quantize an FP32 ONNX model to INT8 QDQ with a calibration set."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from calibration.builder import load_calibration_set
from edge.runtime.onnxruntime_backend import OnnxRuntimeBackend
from edge.sidecar import read_sidecar
from export.quantize import (
    FORMS,
    METHODS,
    QuantizeSettings,
    quantize_qdq,
)


def _run_int8(args: argparse.Namespace) -> int:
    calibration = load_calibration_set(args.calibration)
    settings = QuantizeSettings(form=args.form, method=args.method, batch_size=args.batch_size,
                                float_input_layers=not args.int8_input_layers)
    out = quantize_qdq(args.model, calibration, args.out, settings)
    sidecar = read_sidecar(out)
    fp32 = OnnxRuntimeBackend(args.model, threads=1).run(calibration.inputs)["logits"]
    int8 = OnnxRuntimeBackend(out, threads=1).run(calibration.inputs)["logits"]
    print(json.dumps({"int8": str(out), "form": args.form, "sha256": sidecar.sha256, **sidecar.source["qdq"],
                      "calibration_agreement": float(np.mean(fp32.argmax(1) == int8.argmax(1))),
                      "calibration_max_abs_logit_diff": float(np.abs(fp32 - int8).max())}))
    return 0


def add_int8_command(subparsers: Any) -> argparse.ArgumentParser:
    """``emotion-export int8``: FP32 ONNX + calibration set -> INT8 QDQ ONNX with its sidecar."""
    parser = subparsers.add_parser(
        "int8", help="quantize an FP32 ONNX model to INT8 QDQ for TensorRT (explicit quantization) or the CPU",
        description="Static INT8 quantization with ONNX Runtime. --form tensorrt (default): symmetric int8 "
                    "activations and per-channel weights, zero-point 0, Q/DQ on the inputs of Conv and Gemm only, "
                    "written to <name>.int8.onnx. --form cpu: uint8 activations, int8 per-channel weights, Q/DQ on "
                    "the outputs and around ReLU and max pooling too, which ONNX Runtime's CPU kernels fuse, "
                    "written to <name>.int8-cpu.onnx. Prints FP32/INT8 agreement on the calibration set (the "
                    "held-out comparison is `emotion-export int8-report`).")
    parser.add_argument("model", type=Path, help="FP32 ONNX model with its sidecar, e.g. edge/models/face_stn_cnn.onnx")
    parser.add_argument("--calibration", type=Path, required=True, metavar="DIR",
                        help="calibration set from `emotion-export calibrate`")
    parser.add_argument("--form", choices=FORMS, default="tensorrt",
                        help="tensorrt: the QDQ form TensorRT needs (default); cpu: the form ONNX Runtime runs fast "
                             "on x86 and ARM CPUs")
    parser.add_argument("--method", choices=sorted(METHODS), default=QuantizeSettings().method,
                        help="activation range calibration (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=QuantizeSettings().batch_size,
                        help="calibration batch size (default %(default)s)")
    parser.add_argument("--int8-input-layers", action="store_true",
                        help="quantize the layers that read the model input too (default: they stay float)")
    parser.add_argument("--out", type=Path, help="output path (default <model>.int8.onnx or <model>.int8-cpu.onnx "
                                                 "beside the model)")
    parser.set_defaults(run=_run_int8)
    return parser
