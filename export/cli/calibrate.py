"""``emotion-export calibrate``: write the INT8 calibration sets of the speech and face models."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from calibration.builder import DEFAULT_PER_CLASS
from export.calibration_data import face_calibration, speech_calibration


def _run_calibrate(args: argparse.Namespace) -> int:
    if args.kind == "speech":
        calibration = speech_calibration(args.data, args.per_class, args.seed, args.actors)
    else:
        calibration = face_calibration(args.data, args.per_class, args.seed, args.crop_size)
    manifest = calibration.save(args.out)
    print(f"{manifest}: {len(calibration.inputs)} {calibration.kind} samples {list(calibration.inputs.shape[1:])}, "
          f"per class {calibration.class_counts()}, seed {calibration.seed}, sha256 {calibration.sha256()[:12]}")
    return 0


def add_calibrate_command(subparsers: Any) -> argparse.ArgumentParser:
    """``emotion-export calibrate {speech,face}``: build and save a calibration set."""
    parser = subparsers.add_parser(
        "calibrate", help="build a class-balanced, seeded calibration set from the real training data",
        description="Draw --per-class samples of every class (seeded) from a speech feature cache (speech) or a "
                    "class-folder image set such as FER2013 train/ (face) and save inputs.npy, labels.npy and "
                    "manifest.json (source, sample ids, checksums) to --out.")
    parser.add_argument("kind", choices=("speech", "face"))
    parser.add_argument("--data", type=Path, required=True, metavar="DIR",
                        help="speech: cache folder from `emotion-train cache speech`; face: image folder, e.g. "
                             "../shared/data/fer2013/train")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument("--per-class", type=int, default=DEFAULT_PER_CLASS,
                        help="samples per class (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--actors", type=int, nargs="+", metavar="N",
                        help="speech: only these actors (a fold's training actors); default all")
    parser.add_argument("--crop-size", type=int, default=48, help="face: crop size in pixels (default 48)")
    parser.set_defaults(run=_run_calibrate)
    return parser
