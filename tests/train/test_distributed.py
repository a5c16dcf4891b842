"""Training under torchrun with 2 CPU processes (gloo): DDP trains, only rank 0 writes, the model loads in a single
process; the speech cross-validation splits its folds across the processes and gathers one results JSON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from mosquitto import free_port

from edge.taxonomy import EMOTIONS
from train.data.feature_cache import SpeechCacheSpec, build_cache
from train.data.image_folder import index_image_folder
from train.data.ravdess import index_ravdess
from train.face.training import load_face_model

# folds 0 and 1 test actors 1-2 and 7-10; each fold keeps a male + female validation pair and fit actors
CV_ACTORS = (1, 2, 7, 8, 9, 10, 13, 14)



def _torchrun(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def tiny_fer(fer2013_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 real FER2013 train images per class, copied into a class-folder tree."""
    root = tmp_path_factory.mktemp("fer") / "train"
    index = index_image_folder(fer2013_dir / "train")
    for label in range(len(EMOTIONS)):
        folder = root / EMOTIONS[label]
        folder.mkdir(parents=True)
        for path in [p for p, lab in zip(index.paths, index.label_ids, strict=True) if lab == label][:40]:
            shutil.copy(path, folder / path.name)
    return root


@pytest.fixture(scope="module")
def cv_cache(ravdess_speech_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real speech cache: happy and angry takes (one repetition, normal intensity) of ``CV_ACTORS``."""
    takes = [t for t in index_ravdess(ravdess_speech_dir).takes
             if t.actor in CV_ACTORS and t.repetition == 1 and t.intensity == 1 and t.emotion in (3, 5)]
    return build_cache(takes, SpeechCacheSpec(), tmp_path_factory.mktemp("cache"), ravdess_speech_dir, workers=2,
                       progress=False).directory


@pytest.mark.shared_data
def test_two_processes_train_the_face_model_and_only_rank_0_writes(tiny_fer: Path, tmp_path: Path) -> None:
    out = tmp_path / "face"
    result = _torchrun("-m", "train.cli.train", "face", "--data", str(tiny_fer), "--out", str(out), "--width", "8",
                       "--fc-units", "32", "--epochs", "4", "--batch-size", "32", "--lr", "3e-3", "--augment", "none",
                       "--finetune-epochs", "0", "--val-fraction", "0.2")
    assert result.returncode == 0, result.stderr[-3000:]
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [0, 1, 2, 3]   # one writer: two would log every epoch twice
    assert log[-1]["loss"] < log[0]["loss"]
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint_stage1.pt", "config.json", "face_cnn.pt",
                                                      "recipe.json", "train_log.jsonl"]
    model, meta = load_face_model(out / "face_cnn.pt")   # in this single process
    assert meta["training"]["fit_images"] == 224 and meta["weight_layers"] == 8
    assert meta["training"]["processes"] == 2   # trained by DDP across both, not twice side by side
    assert result.stdout.count("validation accuracy") == 1   # rank 0 alone prints


@pytest.mark.shared_data
def test_the_speech_folds_run_in_parallel_and_one_results_file_gathers_them(cv_cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "cv"
    result = _torchrun("-m", "train.cli.bench", "speech", "--cache", str(cv_cache), "--folds", "0", "1",
                       "--epochs", "1", "--channels", "4,8,8,8", "--embedding", "8", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert [fold["fold"] for fold in results["folds"]] == [0, 1]
    assert (out / "fold0" / "checkpoint.pt").is_file() and (out / "fold1" / "checkpoint.pt").is_file()
    runs = [json.loads(line)["run"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert sorted(runs) == ["speech fold 0", "speech fold 1"]   # each fold trained once, by its own process
    assert results["summary"]["clip_accuracy_mean"]["mean"] >= 0
