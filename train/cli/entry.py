"""Console entry points of the training side: an install hint, not a traceback, when the train extra is absent.

``emotion-train`` and ``emotion-bench`` need torch, tqdm, scikit-learn and matplotlib (the ``train``
extra); the device's base install does not have them.
"""

from __future__ import annotations

import importlib
import sys

TRAIN_EXTRA_MODULES = frozenset({"torch", "tqdm", "sklearn", "matplotlib", "onnx", "onnxscript"})
INSTALL_HINT = "pip install 'emotion-edge[train]' (in a checkout: pip install -e '.[train]')"


def launch(module: str, prog: str) -> int:
    """Run ``module.main()``; exit status 2 with the install hint when a train-extra module is missing."""
    try:
        main = importlib.import_module(module).main
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] not in TRAIN_EXTRA_MODULES:
            raise
        print(f"{prog}: needs the training extra ({err.name} is not installed): {INSTALL_HINT}", file=sys.stderr)
        return 2
    return int(main())


def train_main() -> None:
    """``emotion-train``."""
    sys.exit(launch("train.cli.train", "emotion-train"))


def bench_main() -> None:
    """``emotion-bench``."""
    sys.exit(launch("train.cli.bench", "emotion-bench"))
