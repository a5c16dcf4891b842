"""The ``emotion-export`` command line: checkpoints (speech, face, fusion head) -> ONNX, calibration sets, INT8 QDQ,
INT8 report, engines.

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

from edge.app.cli_support import add_log_level_option, run_main
from edge.errors import InputError, ModelFileError
from edge.models import FACE_MODEL, MODELS_DIR, SPEECH_MODEL
from edge.sidecar import read_sidecar

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
    ("export.cli.calibrate", "add_calibrate_command"),
    ("export.cli.int8", "add_int8_command"),
    ("export.cli.int8_report", "add_int8_report_command"),
    ("export.cli.engine", "add_engine_command"),
)


def _sample(count: int) -> np.ndarray:
    """Sorted, seeded picks of at most PARITY_SAMPLES of ``count`` items."""
    return np.sort(np.random.default_rng(0).choice(count, size=min(PARITY_SAMPLES, count), replace=False))


def _speech_windows(cache: Path) -> np.ndarray:
    """Real MFCC windows of a speech feature cache, for parity checks."""
    from train.data.feature_cache import load_speech_cache

    windows = load_speech_cache(cache).windows
    return windows[_sample(len(windows))]


def _fer_faces(folder: Path, crop_size: int) -> np.ndarray:
    """Real faces (N×1×H×W, 0..255) of a FER2013-layout folder, for parity checks."""
    from train.data.image_folder import index_image_folder, load_images

    images = load_images(index_image_folder(folder), size=crop_size).images
    return images[_sample(len(images)), None].astype(np.float32)


def _ship_speech(args: argparse.Namespace) -> ShippedModel:
    from export.ship import ship
    from train.speech.training import load_speech_model

    model, meta = load_speech_model(args.speech)
    return ship(model, meta, SPEECH_MODEL.stem, "speech", "mfcc", _speech_windows(args.speech_cache), args.out,
                _metrics(args.speech_metrics), args.opset)


def _ship_face(args: argparse.Namespace) -> ShippedModel:
    from export.ship import ship
    from train.face.training import load_face_model

    model, meta = load_face_model(args.face)
    faces = _fer_faces(args.fer_test, meta["model_config"]["crop_size"])
    return ship(model, meta, FACE_MODEL.stem, "face", "face", faces, args.out, _metrics(args.face_metrics), args.opset)


def _ship_fusion(args: argparse.Namespace) -> dict[str, Any]:
    from export.fusion_export import export_fusion

    onnx = {"speech": args.speech_onnx or args.out / SPEECH_MODEL.name,
            "face": args.face_onnx or args.out / FACE_MODEL.name}
    for name, path in onnx.items():
        if not path.is_file():
            raise ModelFileError(f"{path}: no {name} ONNX model; export it first (--{name}) or give --{name}-onnx")
    crop_size = int(read_sidecar(onnx["face"]).features["align"]["crop_size"])
    inputs = {"speech": _speech_windows(args.speech_cache), "face": _fer_faces(args.fer_test, crop_size)}
    exported = export_fusion(args.fusion, onnx, inputs, args.out, _metrics(args.fusion_metrics), args.opset,
                             {"speech": args.speech, "face": args.face})
    return exported.report()


def _run_onnx(args: argparse.Namespace) -> int:
    if args.speech is None and args.face is None and args.fusion is None:
        raise InputError("nothing to export: give --speech, --face and/or --fusion")
    if (args.speech is not None or args.fusion is not None) and args.speech_cache is None:
        raise InputError("--speech and --fusion need --speech-cache (real windows for the parity check)")
    if (args.face is not None or args.fusion is not None) and args.fer_test is None:
        raise InputError("--face and --fusion need --fer-test (real faces for the parity check)")
    reports = []
    if args.speech is not None:
        model = _ship_speech(args)
        reports.append({"onnx": str(model.onnx), "sha256": model.sidecar.sha256, **model.parity.to_dict()})
    if args.face is not None:
        model = _ship_face(args)
        reports.append({"onnx": str(model.onnx), "sha256": model.sidecar.sha256, **model.parity.to_dict()})
    if args.fusion is not None:
        reports.append(_ship_fusion(args))
    for report in reports:
        print(json.dumps(report))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emotion-export", description="Export trained models for the device.")
    add_log_level_option(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    onnx = commands.add_parser(
        "onnx",
        help="torch checkpoints -> ONNX (opset 17, dynamic batch) + JSON sidecars, with a parity check",
        description="Write <out>/speech_cnn.onnx, <out>/face_stn_cnn.onnx and/or <out>/fusion_head.onnx with their "
        "sidecars and print ONNX Runtime vs torch parity (max abs logit difference, argmax agreement) on real "
        "inputs. The fusion head is tied to the speech and face ONNX models in <out> (or --speech-onnx, "
        "--face-onnx), after checking that they give the embeddings of the encoders it was trained with; its "
        "parity is measured on their embeddings of the real windows and faces.",
    )
    onnx.add_argument("--speech", type=Path, help="speech checkpoint from `emotion-train speech` (speech_cnn.pt); with "
                      "--fusion also the checkpoint the head was trained with (default: the path the head records)")
    onnx.add_argument("--speech-cache", type=Path, help="speech feature cache: real windows for the parity check")
    onnx.add_argument("--speech-metrics", type=Path, help="benchmark JSON to record in the speech sidecar")
    onnx.add_argument("--face", type=Path, help="face checkpoint from `emotion-train face` (face_cnn.pt); with "
                      "--fusion also the checkpoint the head was trained with (default: the path the head records)")
    onnx.add_argument("--fer-test", type=Path, help="FER2013 test folder: real faces for the parity check")
    onnx.add_argument("--face-metrics", type=Path, help="benchmark JSON to record in the face sidecar")
    onnx.add_argument("--fusion", type=Path, help="fusion head from `emotion-train fusion` (fusion_head.pt)")
    onnx.add_argument("--speech-onnx", type=Path,
                      help="--fusion: the FP32 speech ONNX model the head will run on (default: <out>/speech_cnn.onnx)")
    onnx.add_argument("--face-onnx", type=Path,
                      help="--fusion: the FP32 face ONNX model the head will run on (default: <out>/face_stn_cnn.onnx)")
    onnx.add_argument("--fusion-metrics", type=Path, help="benchmark JSON to record in the fusion head's sidecar")
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
