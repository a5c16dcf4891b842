"""``emotion-export int8-report``: FP32 vs INT8 agreement, accuracy and latency, as a table and JSON."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

from calibration.builder import DEFAULT_PER_CLASS
from edge.errors import InputError
from edge.models import FACE_MODEL, SPEECH_MODEL
from export.int8_report import (
    ACCURACY_COLUMNS,
    LATENCY_COLUMNS,
    MAX_DROP_POINTS,
    MIN_AGREEMENT,
    ModelPair,
    _sample_shape,
    av_rows,
    fer_rows,
    fold_rows,
    latency_rows,
    markdown,
)
from export.quantize import FORMS, METHODS, QuantizeSettings, int8_path
from train.reports import print_table, save_json


def _sample_inputs(pair: ModelPair) -> np.ndarray:
    """One seeded uniform input of the model's shape (these CNNs take the same time whatever the values)."""
    scale = 255.0 if pair.fp32.sidecar.kind == "face" else 1.0
    return (np.random.default_rng(0).random((1, *_sample_shape(pair))) * scale).astype(np.float32)


def _pair(path: Path, needed_for: str, threads: int, form: str) -> ModelPair:
    if not path.is_file() or not int8_path(path, form).is_file():
        raise InputError(f"{needed_for} needs {path} and {int8_path(path, form).name} (`emotion-export onnx` and "
                         f"`int8 --form {form}`)")
    return ModelPair.open(path, threads=threads, form=form)


def _run(args: argparse.Namespace) -> int:
    accuracy: list[dict[str, Any]] = []
    if args.fer_test:
        accuracy += fer_rows(_pair(args.face, "--fer-test", args.threads, args.form), args.fer_test)
    if args.speech_cv:
        if not args.speech_cache:
            raise InputError("--speech-cv needs --speech-cache (the cache its folds were trained on)")
        args.out.mkdir(parents=True, exist_ok=True)
        settings = QuantizeSettings(form=args.form, method=args.method,
                                    float_input_layers=not args.int8_input_layers)
        accuracy += fold_rows(args.speech_cv, args.speech_cache, args.out, settings, args.per_class, args.seed)
    if args.av_cache:
        accuracy += av_rows(_pair(args.face, "--av-cache", args.threads, args.form),
                            _pair(args.speech, "--av-cache", args.threads, args.form), args.av_cache)
    present = [path for path in (args.speech, args.face) if path.is_file() and int8_path(path, args.form).is_file()]
    for path in {args.speech, args.face} - set(present) if args.latency else ():
        print(f"latency: {path} or its INT8 twin is missing, left out")
    pairs = [ModelPair.open(path, threads=args.threads, form=args.form) for path in present] if args.latency else []
    latency = latency_rows(pairs, {p.name: _sample_inputs(p) for p in pairs}, args.batches, args.repeats)
    if accuracy:
        print_table(accuracy, ACCURACY_COLUMNS, title=f"INT8 QDQ ({args.form} form) vs FP32 (ONNX Runtime, CPU)",
                    digits=4)
    if latency:
        print_table(latency, LATENCY_COLUMNS,
                    title=f"ONNX Runtime CPU latency, {args.threads} thread(s), ms per call")
    machine = {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
               "onnxruntime": onnxruntime.__version__, "threads": args.threads, "int8_form": args.form}
    command = "emotion-export " + " ".join(sys.argv[1:])
    save_json(args.out / "report.json", {"command": command, "machine": machine,
                                         "target": {"max_drop_points": MAX_DROP_POINTS, "min_agreement": MIN_AGREEMENT},
                                         "accuracy": accuracy, "latency": latency})
    (args.out / "report.md").write_text(
        f"Command: `{command}`\n\n"
        + "".join(markdown(rows, columns) + "\n\n" for rows, columns in
                  ((accuracy, ACCURACY_COLUMNS), (latency, LATENCY_COLUMNS), ([machine], list(machine))) if rows))
    print(f"report.json and report.md in {args.out}")
    return 0


def add_int8_report_command(subparsers: Any) -> argparse.ArgumentParser:
    """``emotion-export int8-report``: INT8 vs FP32 accuracy on the benchmark sets and CPU latency."""
    parser = subparsers.add_parser(
        "int8-report",
        help="INT8 QDQ vs FP32: accuracy on FER2013 test, RAVDESS speech folds and AV clips; CPU latency",
        description="Compare each FP32 model with its INT8 QDQ twin (<name>.int8.onnx, or <name>.int8-cpu.onnx "
                    "with --form cpu) in ONNX Runtime: accuracy "
                    "of each, drop in points and argmax agreement on the benchmark sets given, and latency of "
                    "both measured interleaved in this one run. Writes report.json and report.md to --out.")
    parser.add_argument("--form", choices=FORMS, default="tensorrt",
                        help="which INT8 twin to compare: tensorrt (<name>.int8.onnx, default) or cpu "
                             "(<name>.int8-cpu.onnx)")
    parser.add_argument("--face", type=Path, default=FACE_MODEL, help="FP32 face model (default: %(default)s)")
    parser.add_argument("--speech", type=Path, default=SPEECH_MODEL, help="FP32 speech model (default: %(default)s)")
    parser.add_argument("--fer-test", type=Path, metavar="DIR", help="FER2013 test folder")
    parser.add_argument("--speech-cv", type=Path, metavar="DIR",
                        help="output folder of `emotion-bench speech` (results.json, fold*/checkpoint.pt)")
    parser.add_argument("--speech-cache", type=Path, metavar="DIR", help="the speech cache the folds were trained on")
    parser.add_argument("--av-cache", type=Path, metavar="DIR", help="audio-visual RAVDESS cache")
    parser.add_argument("--per-class", type=int, default=DEFAULT_PER_CLASS,
                        help="fold calibration samples per class (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="fold calibration seed (default 0)")
    parser.add_argument("--method", choices=sorted(METHODS), default=QuantizeSettings().method,
                        help="fold calibration method, as for `emotion-export int8` (default %(default)s)")
    parser.add_argument("--int8-input-layers", action="store_true",
                        help="fold models: quantize the layers reading the input too, as for `emotion-export int8`")
    parser.add_argument("--latency", action=argparse.BooleanOptionalAction, default=True,
                        help="measure FP32 and INT8 latency of the speech and face models (default: yes)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="latency batch sizes (default 1 8)")
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per model and batch (default 200)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    parser.add_argument("--out", type=Path, default=Path("runs/int8_report"),
                        help="output folder (default %(default)s)")
    parser.set_defaults(run=_run)
    return parser
