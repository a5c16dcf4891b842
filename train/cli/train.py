"""``emotion-train``: the training side's command line (dataset index, feature caches)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from edge.app.cli_support import add_log_level_option
from edge.errors import InputError
from edge.features.mfcc import MfccParams
from edge.taxonomy import RAVDESS_LABELS
from train.cli.face_calibrate import add_face_calibration_command
from train.cli.face_train import add_face_training_commands
from train.cli.fusion_train import add_fusion_command
from train.cli.options import run_tool
from train.cli.speech_calibrate import add_speech_calibration_command
from train.cli.speech_train import add_speech_command
from train.data.feature_cache import (
    AvCacheSpec,
    CacheSpec,
    SpeechCacheSpec,
    build_cache,
)
from train.data.ravdess import index_ravdess
from train.speech.degrade import SpeechAugment


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _index(args: argparse.Namespace) -> int:
    index = index_ravdess(args.data)
    print(f"{args.data}: {len(index.takes)} takes, {len(index.skipped)} skipped")
    by_emotion = Counter(t.label for t in index.takes)
    print("per emotion: " + ", ".join(f"{label} {by_emotion[label]}" for label in RAVDESS_LABELS))
    by_actor = Counter(t.actor for t in index.takes)
    print("per actor: " + ", ".join(f"{actor:02d} {n}" for actor, n in sorted(by_actor.items())))
    by_suffix = Counter(t.path.suffix for t in index.takes)
    print("per file type: " + ", ".join(f"{suffix} {n}" for suffix, n in sorted(by_suffix.items())))
    for path, reason in index.skipped:
        print(f"skipped {path}: {reason}")
    return 0


def _cache(args: argparse.Namespace) -> int:
    index = index_ravdess(args.data)
    spec: CacheSpec
    modalities: tuple[int, ...]
    if args.kind == "speech":
        mfcc = replace(MfccParams(), window_s=args.window_s, hop_s=args.hop_s)
        augment = SpeechAugment(copies=args.augment_copies, seed=args.augment_seed) if args.augment_copies else None
        spec, modalities, needed = SpeechCacheSpec(mfcc=mfcc, augment=augment), (1, 3), "audio"   # 02: no sound
    else:
        spec = AvCacheSpec(every_nth=args.every_nth, key_face_radius=args.radius)
        modalities, needed = (1,), "audio and video"
    takes = [t for t in index.takes if t.modality in modalities]
    if not takes:
        raise InputError(f"{args.data}: no takes with {needed}")
    takes = takes[: args.limit]
    report = build_cache(takes, spec, args.out, args.data, workers=args.workers)
    print(f"{report.directory}: {report.items} items ({report.built} built now, {report.reused} already "
          f"there), {len(report.failures)} failed, {report.seconds:.1f} s")
    for _, reason in report.failures:
        print(f"failed: {reason}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emotion-train",
        description="Training-side tools of emotion-edge: index RAVDESS folders, build feature caches, train the "
                    "speech and face models and the model-level fusion head.")
    add_log_level_option(parser, default="WARNING")
    commands = parser.add_subparsers(dest="command", required=True)

    index = commands.add_parser("index", help="count the takes of a RAVDESS folder",
                                description="Count the takes of a RAVDESS folder per emotion, actor and "
                                            "file type, and list the files skipped as malformed.")
    index.add_argument("--data", type=Path, required=True, metavar="DIR",
                       help="RAVDESS root holding Actor_XX/ folders (the original layout)")
    index.set_defaults(run=_index)

    cache = commands.add_parser("cache", help="build a feature cache of a RAVDESS folder",
                                description="Build (or resume) a feature cache. The cache folder under "
                                            "--out is named after the data folder and a hash of every "
                                            "feature parameter; items already built are kept.")
    kinds = cache.add_subparsers(dest="kind", required=True)
    speech = kinds.add_parser("speech", help="VAD-trimmed MFCC windows of every take with audio",
                              description="MFCC windows of the VAD-trimmed audio of every take with sound "
                                          "(audio-only .wav/.flac and the audio track of AV .mp4).")
    av = kinds.add_parser("av", help="aligned face crops, key faces and speech windows of AV clips",
                          description="For each full audio-visual take (01-...mp4): the aligned largest "
                                      "face of every Nth frame, the key faces, and the speech windows with "
                                      "start times on the video's time base.")
    for sub in (speech, av):
        sub.add_argument("--data", type=Path, required=True, metavar="DIR",
                         help="RAVDESS root holding Actor_XX/ folders (the original layout)")
        sub.add_argument("--out", type=Path, required=True, metavar="CACHE_ROOT",
                         help="folder that holds the caches; this build writes one sub-folder of it")
        sub.add_argument("--workers", type=_positive, default=None, metavar="N",
                         help="worker processes (default: the number of CPUs; 1 builds in this process)")
        sub.add_argument("--limit", type=_positive, default=None, metavar="N",
                         help="only the first N takes in name order (a quick partial build; a later "
                              "run without it completes the cache)")
        sub.set_defaults(run=_cache)
    mfcc_defaults = MfccParams()
    speech.add_argument("--window-s", type=float, default=mfcc_defaults.window_s, metavar="S",
                        help=f"MFCC window length in seconds (default {mfcc_defaults.window_s}); a model trained "
                             "on the cache records it, and the daemon and classify cut windows to match")
    speech.add_argument("--hop-s", type=float, default=mfcc_defaults.hop_s, metavar="S",
                        help=f"hop between windows in seconds (default {mfcc_defaults.hop_s})")
    speech.add_argument("--augment-copies", type=int, default=0, metavar="K",
                        help="also K randomly degraded copies of every take (noise or babble at 0-20 dB SNR, "
                             "sometimes reverb or the telephone band, a level change): training uses them for "
                             "its fitting actors, never for validation or tests (default 0: none)")
    speech.add_argument("--augment-seed", type=int, default=0, metavar="N", help="seeds the copies (default 0)")
    av.add_argument("--every-nth", type=_positive, default=1, metavar="N",
                    help="examine frames 0, N, 2N, ... of each clip (default 1: every frame)")
    av.add_argument("--radius", type=_positive, default=AvCacheSpec().key_face_radius, metavar="R",
                    help="key-face radius r: one key face per sliding window of 2r+1 face crops, windows "
                         f"r apart (default {AvCacheSpec().key_face_radius}, the daemon's pipeline.key_face_radius)")
    add_speech_command(commands)
    add_speech_calibration_command(commands)
    add_face_training_commands(commands)
    add_face_calibration_command(commands)
    add_fusion_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
