"""The ``emotion-export`` command line: checkpoints -> ONNX, calibration sets, INT8 QDQ, INT8 report, engines.

``engine`` runs on a Jetson with only the device dependencies (no torch, onnx or matplotlib), so
every command's heavy imports are lazy or inside its own module, and a command whose module
cannot be imported here is listed as unavailable instead of breaking the others.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.cli_support import add_log_level_option, run_main
from edge.errors import InputError
from edge.models import MODELS_DIR

if TYPE_CHECKING:
    from export.ship import ShippedModel

PARITY_SAMPLES = 512


def _metrics(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read benchmark results ({exc})") from exc


# (module, function adding the subcommand): calibration sets, INT8 QDQ, the INT8 report, TensorRT engines
COMMAND_MODULES = (
    ("export.calibration_data", "add_calibrate_command"),
    ("export.quantize", "add_int8_command"),
    ("export.int8_report", "add_int8_report_command"),
    ("export.tensorrt_engine", "add_engine_command"),
)


def _ship_speech(args: argparse.Namespace) -> ShippedModel:
    from export.ship import ship
    from train.data.feature_cache import load_speech_cache
    from train.speech_training import load_speech_model

    model, meta = load_speech_model(args.speech)
    windows = load_speech_cache(args.speech_cache).windows
    picks = np.random.default_rng(0).choice(len(windows), size=min(PARITY_SAMPLES, len(windows)), replace=False)
    return ship(
        model, meta, "speech_cnn", "speech", "mfcc", windows[np.sort(picks)], args.out, _metrics(args.speech_metrics),
        args.opset,
    )


def _ship_face(args: argparse.Namespace) -> ShippedModel:
    from export.ship import ship
    from train.data.image_folder import index_image_folder, load_images
    from train.face_training import load_face_model

    model, meta = load_face_model(args.face)
    images = load_images(index_image_folder(args.fer_test), size=meta["model_config"]["crop_size"]).images
    picks = np.sort(np.random.default_rng(0).choice(len(images), size=min(PARITY_SAMPLES, len(images)), replace=False))
    return ship(
        model,
        meta,
        "face_stn_cnn",
        "face",
        "face",
        images[picks, None].astype(np.float32),
        args.out,
        _metrics(args.face_metrics),
        args.opset,
    )


def _run_onnx(args: argparse.Namespace) -> int:
    if args.speech is None and args.face is None:
        raise InputError("nothing to export: give --speech and/or --face")
    shipped = []
    if args.speech is not None:
        if args.speech_cache is None:
            raise InputError("--speech needs --speech-cache (real windows for the parity check)")
        shipped.append(_ship_speech(args))
    if args.face is not None:
        if args.fer_test is None:
            raise InputError("--face needs --fer-test (real faces for the parity check)")
        shipped.append(_ship_face(args))
    for model in shipped:
        print(json.dumps({"onnx": str(model.onnx), "sha256": model.sidecar.sha256, **model.parity.to_dict()}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emotion-export", description="Export trained models for the device.")
    add_log_level_option(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    onnx = commands.add_parser(
        "onnx",
        help="torch checkpoints -> ONNX (opset 17, dynamic batch) + JSON sidecars, with a parity check",
        description="Write <out>/speech_cnn.onnx and/or <out>/face_stn_cnn.onnx with their sidecars and print "
        "ONNX Runtime vs torch parity (max abs logit difference, argmax agreement) on real inputs.",
    )
    onnx.add_argument("--speech", type=Path, help="speech checkpoint from `emotion-train speech` (speech_cnn.pt)")
    onnx.add_argument("--speech-cache", type=Path, help="speech feature cache: real windows for the parity check")
    onnx.add_argument("--speech-metrics", type=Path, help="benchmark JSON to record in the speech sidecar")
    onnx.add_argument("--face", type=Path, help="face checkpoint from `emotion-train face` (face_cnn.pt)")
    onnx.add_argument("--fer-test", type=Path, help="FER2013 test folder: real faces for the parity check")
    onnx.add_argument("--face-metrics", type=Path, help="benchmark JSON to record in the face sidecar")
    onnx.add_argument("--out", type=Path, default=MODELS_DIR, help="output folder (default: %(default)s)")
    onnx.add_argument("--opset", type=int, choices=(13, 17), default=17,
                      help="ONNX opset (default %(default)s: TensorRT 8.5+; 13 for TensorRT 8.0/8.2 on JetPack 4.6, "
                      "with the face model's grid sampling written out in opset-13 operators)")
    onnx.set_defaults(run=_run_onnx)
    unavailable = []
    for module_name, add_command in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # e.g. onnx or matplotlib absent on a Jetson: `engine` still works
            unavailable.append(f"{module_name} ({exc}; pip install -e '.[train]')")
            continue
        getattr(module, add_command)(commands)
    if unavailable:
        parser.epilog = "commands unavailable here: " + ", ".join(unavailable)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
