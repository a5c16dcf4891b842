"""The ``emotion-edge`` command line: the device-side entry points."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from edge.classify import Classifier, ClassifySettings
from edge.errors import InputError
from edge.feature_report import ReportSettings, describe_media
from edge.features.alignment import AlignParams
from edge.features.faces import DEFAULT_DETECTOR, FaceDetector
from edge.models import FACE_MODEL, SPEECH_MODEL
from edge.runtime.onnxruntime_backend import OnnxRuntimeBackend

BUNDLED_CLIP = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "01-01-03-01-01-02-05.mp4"


def _add_features_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "features",
        help="run the feature pipeline (VAD, MFCC windows, faces, key faces) over media files",
        description="Decode each file, find speech segments, cut MFCC windows, detect and align faces "
        "and pick key faces; print one JSON line per finding. No pixels or samples are printed.",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        default=[BUNDLED_CLIP],
        help="audio or video files (default: the bundled RAVDESS clip %(default)s)",
    )
    parser.add_argument(
        "--every-nth", type=int, default=3, help="run face detection on every Nth frame (default: %(default)s)"
    )
    parser.add_argument(
        "--key-face-radius",
        type=int,
        default=2,
        help="key faces: window of 2r+1 faces, shifted by r (default: %(default)s)",
    )
    parser.add_argument(
        "--crop-size",
        type=int,
        default=AlignParams().crop_size,
        help="side of the aligned gray face crop in pixels, 48..64 (default: %(default)s)",
    )
    parser.add_argument(
        "--detector", type=Path, default=DEFAULT_DETECTOR, help="YuNet ONNX weights (default: the bundled %(default)s)"
    )
    parser.add_argument(
        "--score-threshold", type=float, default=0.7, help="minimum face detection score (default: %(default)s)"
    )
    parser.set_defaults(handler=_run_features)


def _run_features(args: argparse.Namespace) -> int:
    settings = ReportSettings(
        align=AlignParams(crop_size=args.crop_size), every_nth=args.every_nth, key_face_radius=args.key_face_radius
    )
    detector = FaceDetector(args.detector, score_threshold=args.score_threshold)
    return _print_each(args.paths, lambda path: describe_media(path, settings, detector))


def _add_classify_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "classify",
        help="classify image, audio and video files with the shipped ONNX models (one JSON line per file)",
        description="For each file print its emotion label and posterior per class (7-class taxonomy), and for "
        "video the result of each modality and how they were fused. Images: the first detected face is aligned "
        "and classified. Audio: silence is trimmed and the 1 s MFCC windows' posteriors averaged.",
    )
    parser.add_argument("paths", nargs="+", type=Path, help="image (jpg, png, ...), audio or video files")
    parser.add_argument(
        "--speech-model",
        type=Path,
        default=SPEECH_MODEL,
        help="speech ONNX model with its .json sidecar (default: %(default)s)",
    )
    parser.add_argument(
        "--face-model",
        type=Path,
        default=FACE_MODEL,
        help="face ONNX model with its .json sidecar (default: %(default)s)",
    )
    parser.add_argument("--no-speech", action="store_true", help="do not run the speech model")
    parser.add_argument("--no-face", action="store_true", help="do not run the face model")
    parser.add_argument(
        "--face-crops",
        action="store_true",
        help="images are already aligned face crops (e.g. FER2013): skip face detection",
    )
    parser.add_argument(
        "--every-nth", type=int, default=1, help="video: detect faces on every Nth frame (default: %(default)s)"
    )
    parser.add_argument(
        "--key-face-radius",
        type=int,
        default=5,
        help="video: key faces from windows of 2r+1 faces shifted by r (default: %(default)s)",
    )
    parser.add_argument(
        "--speech-weight", type=float, default=1.0, help="decision fusion weight of speech (default: %(default)s)"
    )
    parser.add_argument(
        "--face-weight", type=float, default=1.0, help="decision fusion weight of faces (default: %(default)s)"
    )
    parser.add_argument(
        "--detector", type=Path, default=DEFAULT_DETECTOR, help="YuNet ONNX weights (default: %(default)s)"
    )
    parser.set_defaults(handler=_run_classify)


def _run_classify(args: argparse.Namespace) -> int:
    settings = ClassifySettings(
        every_nth=args.every_nth,
        key_face_radius=args.key_face_radius,
        face_crops=args.face_crops,
        fusion_weights=(("speech", args.speech_weight), ("face", args.face_weight)),
    )
    classifier = Classifier(
        speech=None if args.no_speech else OnnxRuntimeBackend(args.speech_model),
        face=None if args.no_face else OnnxRuntimeBackend(args.face_model),
        detector=FaceDetector(args.detector),
        settings=settings,
    )
    return _print_each(args.paths, lambda path: [classifier.classify(path)])


def _print_each(paths: Sequence[Path], describe: Callable[[Path], Iterable[dict]]) -> int:
    """Print the JSON records of each path; a bad file is logged and the others still run."""
    failures = 0
    for path in paths:
        try:
            for record in describe(path):
                print(json.dumps(record), flush=True)
        except InputError as exc:
            logging.getLogger("emotion-edge").error("%s", exc)
            failures += 1
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emotion-edge", description="Audio-visual emotion recognition on the edge.")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level for messages on stderr (default: %(default)s)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_features_command(commands)
    _add_classify_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args))
    except InputError as exc:
        logging.getLogger("emotion-edge").error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
