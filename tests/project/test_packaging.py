"""The wheel: what it holds (package data, the two top-level packages) and that the tools run from it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib
from conftest import REPO_ROOT

from edge.demo import DEMO_CLIP

TOOLS = {"train": "emotion_edge_tools.train", "export": "emotion_edge_tools.export",
         "calibration": "emotion_edge_tools.calibration"}


def tree_packages() -> list[str]:
    """Every package of the checkout under the name the wheel gives it."""
    names = ["emotion_edge_tools"]
    for folder, installed in (("edge", "edge"), *TOOLS.items()):
        for init in sorted((REPO_ROOT / folder).rglob("__init__.py")):
            relative = init.parent.relative_to(REPO_ROOT / folder)
            names.append(".".join([installed, *relative.parts]))
    return names


def test_pyproject_lists_every_package_of_the_tree() -> None:
    listed = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert sorted(listed) == sorted(tree_packages()), "update [tool.setuptools] packages in pyproject.toml"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from the checkout's files (a copy: setuptools' build/ folder in a checkout can hold
    modules that have since moved)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO_ROOT, check=True,
                            capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, listed):
        if (REPO_ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(out), str(source)], check=True, capture_output=True, timeout=300)
    (built,) = out.glob("emotion_edge-*.whl")
    return built


def test_the_wheel_holds_the_package_data_and_only_two_top_level_packages(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert f"edge/demo/{DEMO_CLIP.name}" in names and "edge/demo/ATTRIBUTION.md" in names
    assert "edge/models/face_stn_cnn.onnx" in names and "edge/models/face_detection_yunet_2023mar.json" in names
    assert "emotion_edge_tools/train/face/peers/fer_mini_xception.tflite" in names
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"edge", "emotion_edge_tools"}   # no generic train/, export/, calibration/


def test_the_tools_run_from_the_wheel_without_claiming_their_names(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    plain = subprocess.run([sys.executable, "-c", "import export"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
    assert plain.returncode != 0 and "No module named 'export'" in plain.stderr
    probe = ("import sys, emotion_edge_tools as tools; sys.argv = ['emotion-export', '--help']\n"
             "try:\n    tools.export_main()\nexcept SystemExit as end:\n"
             "    import export; print(export.__file__); sys.exit(end.code)")
    launched = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)
    assert launched.returncode == 0, launched.stderr
    assert "usage: emotion-export" in launched.stdout
    assert launched.stdout.strip().splitlines()[-1].startswith(str(site / "emotion_edge_tools" / "export"))
