"""What the fusion head learns from: frozen encoders, their embeddings and posteriors, and training pairs.

``Encoder`` is a trained speech or face model (eval mode, never trained further here) with its
metadata and the SHA-256 of its file: a fusion head is only valid on the embeddings of the exact
encoders it was trained with, so every head records them and every user checks them. An encoder
is a torch checkpoint or an exported ONNX model with its sidecar (its ``logits`` and ``embedding``
outputs, on ONNX Runtime's CPU provider): the benchmarks then score exactly what the device runs.
``encode`` runs an encoder once and returns its embeddings and its posteriors mapped onto the
7-class ``EMOTIONS`` (RAVDESS calm adds to neutral).

Class-matched pairs: only one RAVDESS actor has video here, so the head can also be trained on
pairs of a RAVDESS speech window and a FER2013 face of the same 7-class emotion (calm windows
pair with neutral faces). ``plan_pairs`` draws, seeded, ``per_window`` faces of the window's class
for every window of the given actors, from one face split only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from edge.errors import InputError
from edge.fusion.decision import to_emotions
from edge.runtime.onnxruntime_backend import OnnxRuntimeBackend
from edge.sidecar import file_sha256
from edge.taxonomy import EMOTIONS, RAVDESS_LABELS, mapping_matrix
from train.data.feature_cache import SpeechCache
from train.face.training import load_face_model
from train.networks.face_cnn import FaceCNN
from train.networks.speech_cnn import SpeechCNN
from train.speech.benchmark import load_any_speech_model

Encoded = tuple[torch.Tensor, np.ndarray]
"""What ``encode`` returns: embeddings (n, d) and posteriors over ``EMOTIONS`` (n, 7)."""
_TO_EMOTION = np.asarray(mapping_matrix(RAVDESS_LABELS, EMOTIONS)).argmax(axis=1)


def to_emotion_ids(ravdess_label_ids: np.ndarray | Sequence[int]) -> np.ndarray:
    """RAVDESS label ids as ``EMOTIONS`` ids (calm -> neutral)."""
    return _TO_EMOTION[np.asarray(ravdess_label_ids, dtype=np.int64)]


@dataclass
class Encoder:
    """A trained speech or face model, its metadata and the checksum of its file."""

    model: SpeechCNN | FaceCNN | OnnxRuntimeBackend
    meta: dict[str, Any]
    path: Path
    sha256: str

    @property
    def labels(self) -> list[str]:
        return list(self.meta["labels"])

    @property
    def embedding_size(self) -> int:
        config = self.meta["model_config"]
        return int(config["embedding"] if "embedding" in config else config["fc_units"])

    def actors_seen(self) -> set[int]:
        """RAVDESS actors whose data trained or selected this model (none for a FER2013 face model)."""
        training = self.meta.get("training", {})
        return {int(a) for a in [*training.get("fit_actors", []), *training.get("validation_actors", [])]}

    def describe(self) -> dict[str, Any]:
        """What a fusion artifact records about the encoder."""
        training = self.meta.get("training", {})
        return {"path": str(self.path.resolve()), "sha256": self.sha256, "model": self.meta["model"],
                "labels": self.labels, "embedding_size": self.embedding_size,
                "training_data": training.get("data") or training.get("cache"),
                "fit_actors": training.get("fit_actors"), "validation_actors": training.get("validation_actors")}

    def check_unheard(self, actors: Iterable[int], context: str) -> None:
        """Refuse a model trained or selected on any of ``actors``, or one that records no actors."""
        seen = self.actors_seen()
        if not seen:
            raise InputError(f"{self.path}: the model records no training actors, so it cannot be shown to exclude "
                             f"the test actors of {context}")
        heard = sorted(seen & {int(a) for a in actors})
        if heard:
            raise InputError(f"{self.path}: this speech model was trained or selected on actors {heard}, test actors "
                             f"of {context}; use one that never heard them (e.g. the CV fold model that tests them)")

    def check_matches(self, recorded: dict[str, Any], what: str) -> None:
        """Refuse an encoder other than the one a fusion head recorded (``describe()`` at training)."""
        if recorded["sha256"] != self.sha256:
            raise InputError(f"{self.path}: this {what} model (SHA-256 {self.sha256[:12]}) is not the one the "
                             f"fusion head was trained with ({recorded['path']}, SHA-256 {recorded['sha256'][:12]})")


def check_av_cache(speech: Encoder, face: Encoder, manifest: dict[str, Any], cache: Path) -> None:
    """Refuse encoders whose feature settings (MFCC, VAD; face alignment) differ from an AV cache's."""
    params = manifest["params"]
    features = speech.meta.get("features") or {}
    for name in ("mfcc", "vad"):
        if name in features and features[name] != params[name]:
            raise InputError(f"{cache}: its {name} settings differ from those {speech.path} was trained with")
    if face.meta["features"]["align"] != params["align"]:
        raise InputError(f"{cache}: its face alignment {params['align']} differs from the one {face.path} expects "
                         f"({face.meta['features']['align']})")


def load_speech_encoder(path: str | Path) -> Encoder:
    """A speech model saved by ``emotion-train speech``, or a fold checkpoint of ``emotion-bench speech``."""
    path = Path(path)
    model, meta = load_any_speech_model(path)
    return Encoder(model=model, meta=meta, path=path, sha256=file_sha256(path))


def load_face_encoder(path: str | Path) -> Encoder:
    """A face model saved by ``emotion-train face`` (``face_cnn.pt``) or exported (``.onnx`` with its sidecar)."""
    path = Path(path)
    if path.suffix == ".onnx":
        return onnx_encoder(path, "face")
    model, meta = load_face_model(path)
    return Encoder(model=model, meta=meta, path=path, sha256=file_sha256(path))


def onnx_encoder(path: Path, kind: str) -> Encoder:
    """An exported encoder on ONNX Runtime (one thread, CPU), its metadata from the sidecar."""
    backend = OnnxRuntimeBackend(path, threads=1)
    sidecar = backend.sidecar
    if sidecar.kind != kind or "embedding" not in sidecar.outputs:
        raise InputError(f"{path}: a {sidecar.kind} model with outputs {list(sidecar.outputs)}; a {kind} encoder "
                         "with an embedding output is needed")
    meta = {"model": sidecar.training.get("model", sidecar.name), "model_config": sidecar.training["model_config"],
            "labels": list(sidecar.labels), "features": sidecar.features, "training": sidecar.training}
    return Encoder(model=backend, meta=meta, path=path, sha256=sidecar.sha256)


@torch.no_grad()
def encode(encoder: Encoder, inputs: torch.Tensor, batch_size: int = 256,
           description: str | None = None) -> Encoded:
    """(embeddings (n, d), posteriors over ``EMOTIONS`` (n, 7)) of ``inputs``, the encoder in eval mode."""
    model = encoder.model
    embeddings, posteriors = [], []
    starts = range(0, len(inputs), batch_size)
    for i in tqdm(starts, desc=description, unit="batch", disable=description is None):
        batch = inputs[i : i + batch_size]
        if isinstance(model, OnnxRuntimeBackend):
            outputs = model.run(batch.numpy().astype(np.float32))
            embeddings.append(torch.from_numpy(outputs["embedding"]))
            posteriors.append(torch.softmax(torch.from_numpy(outputs["logits"]), dim=1))
            continue
        model.eval()
        embedding = model.embed(batch)
        embeddings.append(embedding)
        posteriors.append(torch.softmax(model.classifier(embedding), dim=1))
    if not embeddings:
        return torch.zeros(0, encoder.embedding_size), np.zeros((0, len(EMOTIONS)))
    return torch.cat(embeddings), to_emotions(torch.cat(posteriors).numpy(), encoder.labels)


def class_matched_pairs(speech_labels: np.ndarray, face_labels: np.ndarray, per_window: int,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(speech indices, face indices): each speech item with ``per_window`` faces of its class.

    Both label arrays are ``EMOTIONS`` ids. Faces are drawn uniformly from the class, with
    replacement across windows (and within one when the class has fewer faces than
    ``per_window``). ``InputError`` when a class of the speech items has no face.
    """
    if per_window < 1:
        raise InputError(f"faces per window must be at least 1, got {per_window}")
    speech_labels, face_labels = np.asarray(speech_labels), np.asarray(face_labels)
    speech_idx, face_idx = [], []
    for label in np.unique(speech_labels):
        windows = np.flatnonzero(speech_labels == label)
        pool = np.flatnonzero(face_labels == label)
        if len(pool) == 0:
            raise InputError(f"no face of class {EMOTIONS[label]!r} to pair with its {len(windows)} speech windows")
        replace = len(pool) < per_window
        drawn = np.stack([rng.choice(pool, size=per_window, replace=replace) for _ in windows])
        speech_idx.append(np.repeat(windows, per_window))
        face_idx.append(drawn.reshape(-1))
    return np.concatenate(speech_idx), np.concatenate(face_idx)


@dataclass
class PairSet:
    """Class-matched (speech window, face) pairs: indices into a speech cache and into one face split."""

    windows: np.ndarray
    """Indices into the speech cache's windows."""
    faces: np.ndarray
    """Indices into the images of ``face_split``."""
    labels: np.ndarray
    """``EMOTIONS`` ids (the same for both sides of a pair)."""
    face_split: str
    actors: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def describe(self) -> dict[str, Any]:
        return {"pairs": len(self), "speech_windows": int(len(np.unique(self.windows))),
                "faces": int(len(np.unique(self.faces))), "face_split": self.face_split,
                "speech_actors": list(self.actors),
                "per_class": {EMOTIONS[c]: int(n) for c, n in enumerate(np.bincount(self.labels, minlength=7))}}


def plan_pairs(cache: SpeechCache, actors: Sequence[int], face_labels: np.ndarray, face_split: str,
               per_window: int, seed: int) -> PairSet:
    """Every window of ``actors`` in the cache, each with ``per_window`` faces of its class (seeded)."""
    windows = np.flatnonzero(np.isin(cache.window_actors, list(actors)))
    if len(windows) == 0:
        raise InputError(f"{cache.directory}: no windows of actors {sorted(actors)}")
    labels = to_emotion_ids(cache.window_labels[windows])
    speech_idx, face_idx = class_matched_pairs(labels, face_labels, per_window, np.random.default_rng(seed))
    return PairSet(windows=windows[speech_idx], faces=face_idx, labels=labels[speech_idx], face_split=face_split,
                   actors=tuple(sorted(int(a) for a in actors)))


def embed_rows(encoder: Encoder, inputs: np.ndarray, rows: np.ndarray,
               to_tensor: Callable[[np.ndarray], torch.Tensor], description: str) -> Encoded:
    """Embeddings and posteriors of ``inputs[rows]`` placed at ``rows`` of full-size arrays (zeros elsewhere)."""
    unique = np.unique(rows)
    embedding, posterior = encode(encoder, to_tensor(inputs[unique]), description=description)
    full_embedding = torch.zeros(len(inputs), embedding.shape[1])
    full_posterior = np.zeros((len(inputs), posterior.shape[1]))
    full_embedding[unique], full_posterior[unique] = embedding, posterior
    return full_embedding, full_posterior
