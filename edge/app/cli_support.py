"""What every emotion-* command line shares: logging to stderr and turning bad input into exit code 2."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence

from edge.errors import InputError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def add_log_level_option(parser: argparse.ArgumentParser, default: str = "INFO") -> None:
    parser.add_argument(
        "--log-level",
        default=default,
        choices=LOG_LEVELS,
        help="level of the messages logged to stderr (default: %(default)s)",
    )


def run_main(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    context: Callable[[], contextlib.AbstractContextManager[object]] = contextlib.nullcontext,
) -> int:
    """Parse ``argv``, run the chosen subcommand's ``run`` function, and map InputError to exit code 2.

    Subcommands set ``run=<function(args) -> int>`` with ``set_defaults``. A reader that closes
    stdout early (``... | head -1``) ends the command quietly with exit status 0.
    """
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(args, "log_level", None) or "INFO",
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        with context():
            return int(args.run(args))
    except InputError as exc:
        logging.getLogger(parser.prog).error("%s", exc)
        return 2
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())   # the interpreter's last flush must not fail again
        os.close(devnull)
        return 0
