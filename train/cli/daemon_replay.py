"""``emotion-bench daemon-replay``: RAVDESS audio-visual clips through the daemon, time to the correct label."""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path
from typing import Any

from edge.config.loader import apply_overrides, load_config, parse_overrides
from edge.config.schema import Config
from edge.errors import InputError
from train.data.ravdess import index_ravdess
from train.fusion.replay import replay_clips, summary
from train.reports import print_table, save_json


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config) if args.config else Config()
    config = apply_overrides(config, parse_overrides(args.overrides))
    takes = [t for t in index_ravdess(args.data).takes if t.modality == 1]
    if not takes:
        raise InputError(f"{args.data}: no RAVDESS audio-visual takes (modality 01, .mp4)")
    clips = replay_clips(config, takes)
    print_table(clips, ("take_id", "truth", "first_label_s", "time_to_correct_s", "correct_share", "final_label",
                        "ends_correct", "label_changes", "frames_dropped"),
                title=f"daemon replay of {len(clips)} clips of {args.data} in real time (media seconds)", digits=2)
    result = summary(clips)
    print(f"{result['ends_correct']:.0%} of clips end on their label, {result['reached_correct']:.0%} reach it; "
          f"median time to it {result['median_time_to_correct_s']} s; mean share of the labelled time on it "
          f"{result['mean_correct_share']:.2f}")
    out: Path = args.out
    save_json(out / "replay.json", {"benchmark": "daemon-replay", "command": " ".join(sys.argv),
                                    "data": str(args.data), "machine": platform.platform(),
                                    "models": {"speech": str(config.models.speech), "face": str(config.models.face)},
                                    "summary": result, "clips": clips})
    print(f"replay.json in {out}")
    return 0


def add_replay_command(subparsers: Any) -> None:
    """``emotion-bench daemon-replay``."""
    parser = subparsers.add_parser(
        "daemon-replay", help="RAVDESS AV clips replayed in real time through the daemon: time to the right label",
        description="Run the daemon (real-time file source, the configured models, fusion and smoothing) on every "
                    "RAVDESS audio-visual clip of --data and read its events: when it first names the clip's "
                    "emotion, the share of the time it holds it, and the label it ends on. Use a speech model that "
                    "never heard the clips' actors (--set models.speech=...). Writes replay.json to --out.")
    parser.add_argument("--data", type=Path, required=True, metavar="DIR",
                        help="RAVDESS folder with Actor_XX/*.mp4 audio-visual takes")
    parser.add_argument("--config", type=Path, help="daemon configuration file (default: the defaults)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config key, TOML value syntax (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("runs/daemon_replay"), metavar="DIR",
                        help="output folder (default runs/daemon_replay)")
    parser.set_defaults(run=_run)
