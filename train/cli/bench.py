"""The ``emotion-bench`` command line: the offline accuracy benchmarks (tables, JSON, confusion PNGs)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edge.app.cli_support import add_log_level_option
from train.cli.daemon_replay import add_replay_command
from train.cli.face_bench import add_face_commands
from train.cli.face_latency import add_latency_command
from train.cli.fusion_bench import add_fusion_commands
from train.cli.fusion_pairs import add_pairs_command
from train.cli.options import run_tool
from train.cli.speech_bench import add_speech_command
from train.cli.speech_calibrate import add_calibration_bench_command
from train.cli.speech_robustness import add_robustness_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emotion-bench",
        description="Offline accuracy benchmarks: RAVDESS speech 4-fold actor-independent CV, FER2013 test, "
        "faces on RAVDESS AV clips, audio-visual fusion (one-actor benchmark and cross-validated protocol).",
    )
    add_log_level_option(parser, default="WARNING")
    commands = parser.add_subparsers(dest="command", required=True)
    add_speech_command(commands)
    add_robustness_command(commands)
    add_calibration_bench_command(commands)
    add_face_commands(commands)
    add_latency_command(commands)
    add_fusion_commands(commands)
    add_pairs_command(commands)
    add_replay_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
