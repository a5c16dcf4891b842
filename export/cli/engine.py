"""``emotion-export engine``: build a TensorRT engine for this GPU from an ONNX model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edge.runtime.cuda_memory import CUDA_APIS
from edge.sidecar import read_sidecar
from export.tensorrt_engine import (
    PRECISIONS,
    EngineSettings,
    build_engine,
)


def _run_engine(args: argparse.Namespace) -> int:
    settings = EngineSettings(precision=args.precision, min_batch=args.min_batch, opt_batch=args.opt_batch,
                              max_batch=args.max_batch, workspace_mib=args.workspace_mib,
                              calibration=args.calibration, calibration_batch=args.calibration_batch, cuda=args.cuda)
    path = build_engine(args.model, args.out, settings)
    sidecar = read_sidecar(path)
    print(json.dumps({"engine": str(path), "precision": sidecar.precision,
                      **{key: sidecar.source[key] for key in ("tensorrt", "gpu", "compute_capability", "onnx",
                                                               "quantization", "capabilities", "trtexec_equivalent")}}))
    return 0


def add_engine_command(subparsers: Any) -> argparse.ArgumentParser:
    """``emotion-export engine``: ONNX -> TensorRT engine + sidecar, on the device that will run it."""
    defaults = EngineSettings()
    parser = subparsers.add_parser(
        "engine", help="build a TensorRT engine (FP16/INT8) from an ONNX model, on the Jetson that will run it",
        description="Parse the ONNX model with TensorRT, build an engine for the dynamic batch profile and "
                    "write <name>.<precision>.trt<version>.sm<cc>.<sha>.engine with its sidecar. --precision "
                    "auto picks INT8 where the GPU has fast INT8 and an INT8 QDQ model (<name>.int8.onnx) is "
                    "beside the model, else FP16 where it has fast FP16 (Jetson Nano), else FP32.")
    parser.add_argument("model", type=Path, help="FP32 or INT8 QDQ ONNX model with its sidecar")
    parser.add_argument("--precision", choices=PRECISIONS, default=defaults.precision,
                        help="engine precision (default %(default)s)")
    parser.add_argument("--min-batch", type=int, default=defaults.min_batch, help="default %(default)s")
    parser.add_argument("--opt-batch", type=int, default=defaults.opt_batch, help="default %(default)s")
    parser.add_argument("--max-batch", type=int, default=defaults.max_batch, help="default %(default)s")
    parser.add_argument("--workspace-mib", type=int, default=defaults.workspace_mib,
                        help="builder workspace limit in MiB (default %(default)s)")
    parser.add_argument("--calibration", type=Path, metavar="DIR",
                        help="INT8 through TensorRT 8.x's entropy calibrator (implicit quantization) on this "
                             "calibration set, instead of the QDQ model")
    parser.add_argument("--calibration-batch", type=int, default=defaults.calibration_batch,
                        help="calibrator batch size (default %(default)s)")
    parser.add_argument("--cuda", choices=CUDA_APIS, default=defaults.cuda,
                        help="CUDA Python binding (default %(default)s: cuda-python if installed, else pycuda)")
    parser.add_argument("--out", type=Path, help="output folder (default: the model's folder)")
    parser.set_defaults(run=_run_engine)
    return parser
