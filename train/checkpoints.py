"""Saving and loading trained models: weights plus the metadata that export turns into a sidecar."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from edge.errors import ModelFileError
from train import distributed
from train.reports import save_json

CONFIG_FILE = "config.json"
ModelT = TypeVar("ModelT", bound=nn.Module)


def save_model(directory: Path, filename: str, model: nn.Module, meta: dict[str, Any]) -> Path:
    """Write ``<directory>/<filename>`` (weights + ``meta``) and ``meta`` alone as ``config.json``; under
    torchrun only rank 0 writes (``train.distributed``)."""
    if not distributed.is_main():
        return directory / filename
    directory.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "meta": meta}, directory / filename)
    save_json(directory / CONFIG_FILE, meta)
    return directory / filename


def load_model(path: str | Path, model_class: type[ModelT], what: str) -> tuple[ModelT, dict[str, Any]]:
    """A ``model_class`` rebuilt from ``meta["model_config"]`` with its weights (eval mode), and its meta."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such {what} model file")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        meta = saved["meta"]
        model = model_class(**meta["model_config"])
        model.load_state_dict(saved["state_dict"])
    except (KeyError, TypeError, RuntimeError) as err:
        raise ModelFileError(f"{path}: not a {what} model saved by emotion-train ({err})") from err
    model.eval()
    return model, meta
