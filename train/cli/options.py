"""What the training command lines share: the torch device and precision options, and how a command runs."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tqdm.contrib.logging import logging_redirect_tqdm

from edge.app.cli_support import run_main
from train import distributed
from train.trainer import (
    PRECISIONS,
    check_device,
)


def _device_argument(text: str) -> str:
    try:
        return check_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """``--device``: where a training command trains (``TrainConfig.device``)."""
    parser.add_argument("--device", type=_device_argument, default="cpu", metavar="DEVICE",
                        help="torch device to train on: cpu (default), cuda, cuda:N; the saved model is the same")


def add_precision_option(parser: argparse.ArgumentParser) -> None:
    """``--precision``: fp32, or bf16 autocast forward passes (``TrainConfig.precision``)."""
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="bf16: bfloat16 autocast forward passes (about 1.9x faster on AVX512-BF16 CPUs; weights "
                             "and optimiser stay float32) (default fp32)")


def run_tool(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Run an ``emotion-train`` / ``emotion-bench`` command: progress bars and logs together, and under
    torchrun only rank 0 speaks."""
    distributed.quiet_unless_main()
    return run_main(parser, argv, logging_redirect_tqdm)
