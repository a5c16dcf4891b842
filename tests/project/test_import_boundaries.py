"""The device package must import with torch, train and export unavailable (DESIGN.md's import rule)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import REPO_ROOT

_BLOCKED_IMPORT_PROBE = textwrap.dedent(
    """
    import importlib, importlib.abc, pkgutil, sys

    BLOCKED = ("torch", "train", "export")

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"edge must not import {name}")
            return None

    sys.meta_path.insert(0, Blocker())
    import edge
    names = [m.name for m in pkgutil.walk_packages(edge.__path__, "edge.") if not m.name.endswith("__main__")]
    for name in names:
        importlib.import_module(name)
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not leaked, leaked
    print(len(names))
    """
)


def test_edge_and_all_submodules_import_without_torch_train_or_export() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKED_IMPORT_PROBE],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 1, "no edge submodules were found to import"
