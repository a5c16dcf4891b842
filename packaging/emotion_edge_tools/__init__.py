"""How the installed tools start: ``emotion-train``, ``emotion-bench`` and ``emotion-export``.

In a checkout, ``train``, ``export`` and ``calibration`` are top-level packages of the repository.
An installed wheel keeps them inside this package (``emotion_edge_tools/train`` ...), so that they
claim no generic import names in a user's site-packages (a robot project's own ``export.py`` stays
its own). Each command puts the folder that holds them first on ``sys.path`` for its own process
only, then runs them under their usual names.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path


def tools_root() -> Path:
    """The folder holding ``train``, ``export`` and ``calibration``: the checkout, or this package installed."""
    spec = importlib.util.find_spec("emotion_edge_tools.train")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("emotion_edge_tools.train is not installed: reinstall emotion-edge")
    return Path(next(iter(spec.submodule_search_locations))).parent


def _run(module: str, function: str) -> object:
    root = str(tools_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    return getattr(importlib.import_module(module), function)()


def train_main() -> None:
    """``emotion-train``."""
    _run("train.cli.entry", "train_main")


def bench_main() -> None:
    """``emotion-bench``."""
    _run("train.cli.entry", "bench_main")


def export_main() -> None:
    """``emotion-export``."""
    sys.exit(_run("export.cli.main", "main"))
