"""``emotion-bench fusion-ravdess`` and ``fusion-cv``: audio-visual fusion on RAVDESS AV clips.

``fusion-ravdess`` (the one-actor audio-visual benchmark) scores, on the clips of an AV cache (actor 05 here: ONE actor,
14 clips), a speech model that never heard the cache's actors (refused otherwise; fold 0's of
the speech CV for actor 05) and the face model (FER2013 only) alone and fused: each speech
window with the key face of the frames seen during it (``train.data.av_windows``), per window
and per clip (majority vote and mean posterior), for speech only (mapped onto the 7 classes,
calm -> neutral), face only, decision fusion with the daemon's default weights and the
model-level fusion head (trained by ``emotion-train fusion`` on those very encoders, which is
checked). ``fusion-cv`` (the 24-actor audio-visual protocol) is the cross-validated protocol of ``train.fusion.cv``.
Both print tables and write ``results.json`` and confusion PNGs to ``--out``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge.taxonomy import EMOTIONS
from train.data.av_windows import AlignedWindows, align_clips, window_seconds
from train.data.feature_cache import AvCache
from train.fusion.data import (
    Encoded,
    Encoder,
    encode,
    load_face_encoder,
    to_emotion_ids,
)
from train.fusion.eval import (
    METRICS,
)
from train.metrics import mean_std, vote
from train.networks.face_cnn import pixels

ONE_ACTOR_NOTE = ("the AV clips of {n} actor(s) {actors} only ({clips} clips): a per-speaker result with large "
                  "uncertainty, not an estimate over speakers")


def prepare_encoders(cache: AvCache, face_model: Path) -> tuple[Encoder, AlignedWindows, Encoded]:
    """The face encoder, the cache's time-aligned windows and the encodings of all of its face crops."""
    face = load_face_encoder(face_model)
    aligned = align_clips(cache.clips, window_seconds(cache.manifest))
    return face, aligned, encode(face, pixels(aligned.crops), description="face embeddings")


def clip_rows(aligned: AlignedWindows, posteriors: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Per clip: truth, windows and each method's decision as ``majority/mean``."""
    truth = to_emotion_ids(aligned.label_ids)
    rows = []
    for take in dict.fromkeys(aligned.take_ids.tolist()):
        mask = aligned.take_ids == take
        row: dict[str, Any] = {"take_id": take, "truth": EMOTIONS[truth[mask][0]], "windows": int(mask.sum())}
        for method, posterior in posteriors.items():
            row[method] = "/".join(EMOTIONS[vote(posterior[mask], rule)] for rule in ("majority", "mean"))
        rows.append(row)
    return rows




def summarise(folds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per method: mean and std over the folds of each metric, and the confusions summed over folds."""
    summary: dict[str, Any] = {}
    for method in folds[0]["methods"]:
        summary[method] = {metric: dict(zip(("mean", "std"), mean_std([f["methods"][method][metric] for f in folds]),
                                            strict=True))
                           for metric in METRICS}
        summary[method]["confusion"] = {name: np.sum([f["confusion"][method][name] for f in folds], axis=0)
                                        for name in folds[0]["confusion"][method]}
    return summary




