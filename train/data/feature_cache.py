"""On-disk feature cache: RAVDESS takes turned into model inputs once, in parallel, resumably.

A cache lives in ``<out_root>/<kind>-<data folder name>-<hash>/`` where the hash covers every
feature parameter (MFCC, VAD, alignment, detector, key-face radius, frame stride) and
``CACHE_FORMAT``, so changing any of them builds a new cache instead of reusing a stale one.
Each take becomes ``items/<take id>.npz``, written to a temporary file and renamed into place,
so an interrupted build resumes where it stopped: existing items are kept as they are. Takes
whose features cannot be made (undecodable file, no speech, no face) are recorded in
``manifest.json`` with the reason, and retried on the next build.

Two kinds:
  speech: load_audio -> trim_silence -> mfcc_windows; npz ``windows`` (n, C, T, F) float32, and with
      augmentation ``augmented``: the windows of randomly degraded copies of the take.
  av: every ``every_nth`` video frame -> FaceDetector (largest face) -> align_face; npz
      ``crops`` (n, S, S) uint8 with ``pts``, ``key_faces`` and the clip's speech windows with
      their start times on the frames' time base (seconds from the container start).
All feature code comes from ``edge.features``: the cache holds exactly what the device computes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import multiprocessing
import os
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from edge.config.schema import DetectorConfig, PipelineConfig
from edge.detectors.face import Face, FaceDetector
from edge.errors import InputError
from edge.features.alignment import AlignParams, align_face
from edge.features.audio import load_audio
from edge.features.keyfaces import key_face_indices
from edge.features.mfcc import MfccParams, mfcc_windows, window_times
from edge.features.vad import VadParams, speech_segments, trim_silence
from edge.features.video import open_clip
from edge.models import DETECTOR_MODEL
from edge.models.loading import create_detector
from edge.taxonomy import RAVDESS_LABELS
from train.data.ravdess import RavdessTake
from train.speech.degrade import BABBLE_SOURCES, Babble, SpeechAugment, babble_from

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
MANIFEST = "manifest.json"
ITEMS = "items"
BABBLE_CACHE = 360


def detector_record(detector: DetectorConfig) -> dict[str, Any]:
    """The detector settings a cache is keyed on; the model is identified by its name and SHA-256."""
    settings = asdict(detector)
    path = Path(detector.model or DETECTOR_MODEL)
    settings["model"] = path.name
    settings["model_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return settings


@dataclass(frozen=True)
class SpeechCacheSpec:
    """Parameters of a speech cache: VAD trimming, then MFCC windows; with ``augment``, degraded copies too."""

    mfcc: MfccParams = field(default_factory=MfccParams)
    vad: VadParams = field(default_factory=VadParams)
    augment: SpeechAugment | None = None
    kind = "speech"

    def to_dict(self) -> dict[str, Any]:
        record = {"format": CACHE_FORMAT, "kind": self.kind, "mfcc": self.mfcc.to_dict(), "vad": self.vad.to_dict()}
        return record if self.augment is None else {**record, "augment": self.augment.to_dict()}


@dataclass(frozen=True)
class AvCacheSpec:
    """Parameters of an audio-visual cache: face crops of every ``every_nth`` frame + speech windows."""

    mfcc: MfccParams = field(default_factory=MfccParams)
    vad: VadParams = field(default_factory=VadParams)
    align: AlignParams = field(default_factory=AlignParams)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    every_nth: int = 1
    key_face_radius: int = PipelineConfig().key_face_radius   # the daemon's, so training sees its key faces
    kind = "av"

    def __post_init__(self) -> None:
        if self.every_nth < 1:
            raise InputError(f"every_nth must be at least 1, got {self.every_nth}")
        if self.key_face_radius < 1:
            raise InputError(f"key_face_radius must be at least 1, got {self.key_face_radius}")

    def to_dict(self) -> dict[str, Any]:
        return {"format": CACHE_FORMAT, "kind": self.kind, "mfcc": self.mfcc.to_dict(),
                "vad": self.vad.to_dict(), "align": self.align.to_dict(),
                "detector": detector_record(self.detector), "every_nth": self.every_nth,
                "key_face_radius": self.key_face_radius}


CacheSpec = SpeechCacheSpec | AvCacheSpec


def params_hash(spec: CacheSpec) -> str:
    """First 12 hex digits of the SHA-256 of the canonical JSON of ``spec.to_dict()``."""
    canonical = json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def cache_dir(out_root: str | Path, data_root: str | Path, spec: CacheSpec) -> Path:
    """Where the cache of ``data_root`` built with ``spec`` lives under ``out_root``."""
    return Path(out_root) / f"{spec.kind}-{Path(data_root).resolve().name}-{params_hash(spec)}"


def _speech_windows(signal: np.ndarray, spec: CacheSpec, path: Path) -> np.ndarray:
    voiced = trim_silence(signal, spec.mfcc.sample_rate, spec.vad)
    if voiced.size == 0:
        raise InputError(f"{path}: no speech found by the VAD (aggressiveness {spec.vad.aggressiveness})")
    return mfcc_windows(voiced, spec.mfcc)


def _take_fields(take: RavdessTake) -> dict[str, np.ndarray]:
    return {"take_id": np.array(take.take_id), "label": np.array(take.label_id),
            "actor": np.array(take.actor)}


def speech_item(take: RavdessTake, spec: SpeechCacheSpec, babble: Babble | None = None) -> dict[str, np.ndarray]:
    """The arrays cached for one take: its VAD-trimmed MFCC windows, label id and actor.

    With ``spec.augment``, also ``augmented``: the windows of ``copies`` randomly degraded versions
    of the take (seeded by the take), each through the same VAD and MFCC path; a copy in which the
    VAD finds no speech is left out.
    """
    signal = load_audio(take.path, spec.mfcc.sample_rate)
    item = {"windows": _speech_windows(signal, spec, take.path), **_take_fields(take)}
    if spec.augment is None:
        return item
    copies = []
    for copy in range(spec.augment.copies):
        rng = np.random.default_rng([spec.augment.seed, zlib.crc32(take.take_id.encode()), copy])
        degraded = spec.augment.apply(signal, spec.mfcc.sample_rate, spec.vad, rng, babble)
        try:
            copies.append(_speech_windows(degraded, spec, take.path))
        except InputError:
            continue
    empty = np.zeros((0, *item["windows"].shape[1:]), dtype=np.float32)
    item["augmented"] = np.concatenate(copies) if copies else empty
    return item


def block_babble(take: RavdessTake, takes: Sequence[RavdessTake], load: Callable[[Path], np.ndarray],
                 seed: int) -> Babble | None:
    """Babble for augmenting ``take``: other actors of its block of six (fold k tests actors 6k+1..6k+6).

    Whenever a copy of ``take`` is trained on, its block is a training block, so every voice in the
    babble is a training actor's: no test speaker is ever heard in training. None when the build holds
    no other actor of the block (white noise then takes babble's place).
    """
    block = (take.actor - 1) // 6
    others = [t for t in takes if (t.actor - 1) // 6 == block and t.actor != take.actor]
    if not others:
        return None
    rng = np.random.default_rng([seed, zlib.crc32(take.take_id.encode())])
    chosen = rng.choice(len(others), size=min(BABBLE_SOURCES, len(others)), replace=False)
    return babble_from([load(others[i].path) for i in chosen])


def largest_face(faces: Sequence[Face]) -> Face:
    """The face with the largest box: the person nearest the camera."""
    return max(faces, key=lambda face: float(face.box[2] * face.box[3]))


def av_item(take: RavdessTake, spec: AvCacheSpec, detector: FaceDetector) -> dict[str, np.ndarray]:
    """The arrays cached for one audio-visual clip.

    ``crops`` and ``pts`` hold the aligned largest face of each examined frame that has one;
    ``key_faces`` indexes ``crops``; ``windows`` are the speech windows of the VAD-trimmed audio
    and ``window_starts`` their start times in seconds on the frames' time base.
    """
    clip = open_clip(take.path, spec.mfcc.sample_rate)
    crops, pts = [], []
    frames = 0
    for frame in clip.frames(spec.every_nth):
        frames += 1
        faces = detector.detect(frame.image)
        if faces:
            crops.append(align_face(frame.image, largest_face(faces).landmarks, spec.align))
            pts.append(frame.pts)
    if not crops:
        raise InputError(f"{take.path}: no face found in any of the {frames} frames examined")
    windows = _speech_windows(clip.audio, spec, take.path)
    # trim_silence cut the audio at the start of the first speech segment.
    speech_start = clip.audio_start + speech_segments(clip.audio, spec.mfcc.sample_rate, spec.vad)[0][0]
    return {
        "crops": np.stack(crops),
        "pts": np.asarray(pts, dtype=np.float64),
        "key_faces": np.asarray(key_face_indices(crops, spec.key_face_radius), dtype=np.int64),
        "frames": np.array(frames),
        "frames_without_face": np.array(frames - len(crops)),
        "windows": windows,
        "window_starts": speech_start + window_times(len(windows), spec.mfcc),
        **_take_fields(take),
    }


def _write_atomically(path: Path, arrays: dict[str, Any]) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as file:
        np.savez(file, **arrays)  # MFCCs and face crops shrink <25% compressed; loading is 3x faster
    os.replace(tmp, path)


class _ItemWriter:
    """Builds and writes items in one process (holding that process's face detector, and decoded babble)."""

    def __init__(self, spec: CacheSpec, takes: Sequence[RavdessTake]) -> None:
        self.spec, self.takes = spec, list(takes)
        self.detector = create_detector(spec.detector) if isinstance(spec, AvCacheSpec) else None
        # babble sources, decoded once: a block of six actors holds 360 takes, and takes come in name order
        self._load = functools.lru_cache(maxsize=BABBLE_CACHE)(self._decode)

    def _decode(self, path: Path) -> np.ndarray:
        return load_audio(path, self.spec.mfcc.sample_rate)

    def __call__(self, take: RavdessTake, item_path: Path) -> str | None:
        """Write the item; return the reason instead when the take's features cannot be made."""
        try:
            if isinstance(self.spec, AvCacheSpec):
                assert self.detector is not None
                arrays = av_item(take, self.spec, self.detector)
            else:
                augment = self.spec.augment
                babble = None if augment is None else block_babble(take, self.takes, self._load, augment.seed)
                arrays = speech_item(take, self.spec, babble)
        except InputError as err:
            return str(err)
        _write_atomically(item_path, arrays)
        return None


_worker: _ItemWriter | None = None


def _init_worker(spec: CacheSpec, takes: Sequence[RavdessTake]) -> None:
    global _worker
    cv2.setNumThreads(1)  # one process per core already
    _worker = _ItemWriter(spec, takes)


def _run_in_worker(take: RavdessTake, item_path: Path) -> str | None:
    assert _worker is not None
    return _worker(take, item_path)


@dataclass
class BuildReport:
    """What one build did: items made now, items found from earlier builds, failures and time."""

    directory: Path
    built: int
    reused: int
    failures: list[tuple[Path, str]]
    seconds: float

    @property
    def items(self) -> int:
        return self.built + self.reused


def _write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    tmp = directory / f"{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, directory / MANIFEST)


def build_cache(takes: Sequence[RavdessTake], spec: CacheSpec, out_root: str | Path, data_root: str | Path,
                workers: int | None = None, progress: bool = True) -> BuildReport:
    """Build (or complete) the cache of ``takes`` from ``data_root`` under ``out_root``.

    ``workers`` processes (default ``os.cpu_count()``) build the missing items; with 1 they are
    built in this process. Items already on disk are kept untouched. The manifest is rewritten at
    the start (``complete`` false) and at the end with the counts, failures and build time.
    """
    started = time.monotonic()
    ids = [take.take_id for take in takes]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise InputError(f"{data_root}: take {duplicate} appears more than once (e.g. as .wav and .flac)")
    directory = cache_dir(out_root, data_root, spec)
    items = directory / ITEMS
    items.mkdir(parents=True, exist_ok=True)
    for stale in items.glob("*.tmp"):  # left by an interrupted build
        stale.unlink()
    manifest: dict[str, Any] = {
        "format": CACHE_FORMAT, "kind": spec.kind, "params_hash": params_hash(spec),
        "params": spec.to_dict(), "data_root": str(Path(data_root).resolve()),
        "labels": list(RAVDESS_LABELS), "complete": False,
    }
    _write_manifest(directory, manifest)
    todo = [(t, items / f"{t.take_id}.npz") for t in takes if not (items / f"{t.take_id}.npz").exists()]
    reused = len(takes) - len(todo)
    failures: list[tuple[Path, str]] = []
    bar = tqdm(total=len(todo), desc=f"{spec.kind} cache", unit="take", disable=not progress)
    n_workers = min(workers or os.cpu_count() or 1, max(1, len(todo)))
    if n_workers == 1:
        writer = _ItemWriter(spec, takes)
        outcomes = ((take, writer(take, path)) for take, path in todo)
        failures.extend(_collect(outcomes, bar))
    else:
        pool = ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(spec, takes))
        try:
            futures = {pool.submit(_run_in_worker, take, path): take for take, path in todo}
            outcomes = ((futures[f], f.result()) for f in as_completed(futures))
            failures.extend(_collect(outcomes, bar))
        finally:  # on an interruption, drop the queued takes instead of building them all first
            pool.shutdown(cancel_futures=True)
    bar.close()
    report = BuildReport(directory=directory, built=len(todo) - len(failures), reused=reused,
                         failures=sorted(failures), seconds=time.monotonic() - started)
    manifest.update({
        "complete": True, "takes": len(takes), "items": report.items, "built": report.built,
        "reused": report.reused,
        "failures": [{"path": str(path), "error": error} for path, error in report.failures],
        "build_seconds": round(report.seconds, 3), "workers": n_workers,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    _write_manifest(directory, manifest)
    return report


def _collect(outcomes: Iterable[tuple[RavdessTake, str | None]], bar: tqdm) -> list[tuple[Path, str]]:
    failures = []
    for take, error in outcomes:
        if error is not None:
            log.warning("no features: %s", error)
            failures.append((take.path, error))
        bar.update()
    return failures


def _read_manifest(directory: Path, kind: str) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.is_file():
        raise InputError(f"{directory}: not a feature cache (no {MANIFEST})")
    manifest: dict[str, Any] = json.loads(path.read_text())
    if manifest.get("format") != CACHE_FORMAT or manifest.get("kind") != kind:
        raise InputError(f"{path}: a {manifest.get('kind')!r} cache of format {manifest.get('format')}, "
                         f"expected a {kind!r} cache of format {CACHE_FORMAT}")
    return manifest


def _item_files(directory: Path) -> list[Path]:
    files = sorted((directory / ITEMS).glob("*.npz"))
    if not files:
        raise InputError(f"{directory}: the cache holds no items")
    return files


@dataclass
class SpeechCache:
    """All windows of a speech cache; ``window_take`` maps each window to its take."""

    directory: Path
    manifest: dict[str, Any]
    take_ids: list[str]
    actors: np.ndarray
    label_ids: np.ndarray
    windows: np.ndarray
    window_take: np.ndarray
    augmented: np.ndarray
    """Windows of the degraded copies (empty without augmentation), never used for validation or tests."""
    augmented_take: np.ndarray

    @property
    def window_labels(self) -> np.ndarray:
        return self.label_ids[self.window_take]

    @property
    def window_actors(self) -> np.ndarray:
        return self.actors[self.window_take]


def load_speech_cache(directory: str | Path) -> SpeechCache:
    """Read a speech cache built by ``build_cache`` (items in take-id order)."""
    directory = Path(directory)
    manifest = _read_manifest(directory, SpeechCacheSpec.kind)
    take_ids, actors, labels, windows, window_take, augmented, augmented_take = [], [], [], [], [], [], []
    for k, path in enumerate(_item_files(directory)):
        with np.load(path) as item:
            take_ids.append(str(item["take_id"]))
            actors.append(int(item["actor"]))
            labels.append(int(item["label"]))
            windows.append(item["windows"])
            window_take.append(np.full(len(item["windows"]), k, dtype=np.int64))
            copies = item["augmented"] if "augmented" in item.files else item["windows"][:0]
            augmented.append(copies)
            augmented_take.append(np.full(len(copies), k, dtype=np.int64))
    return SpeechCache(directory=directory, manifest=manifest, take_ids=take_ids,
                       actors=np.asarray(actors, dtype=np.int64),
                       label_ids=np.asarray(labels, dtype=np.int64),
                       windows=np.concatenate(windows), window_take=np.concatenate(window_take),
                       augmented=np.concatenate(augmented), augmented_take=np.concatenate(augmented_take))


@dataclass
class AvClipFeatures:
    """One cached audio-visual clip (see ``av_item`` for the arrays)."""

    take_id: str
    actor: int
    label_id: int
    crops: np.ndarray
    pts: np.ndarray
    key_faces: np.ndarray
    frames: int
    frames_without_face: int
    windows: np.ndarray
    window_starts: np.ndarray


@dataclass
class AvCache:
    """The clips of an audio-visual cache, in take-id order."""

    directory: Path
    manifest: dict[str, Any]
    clips: list[AvClipFeatures]


def load_av_cache(directory: str | Path) -> AvCache:
    """Read an audio-visual cache built by ``build_cache``."""
    directory = Path(directory)
    manifest = _read_manifest(directory, AvCacheSpec.kind)
    clips = []
    for path in _item_files(directory):
        with np.load(path) as item:
            clips.append(AvClipFeatures(
                take_id=str(item["take_id"]), actor=int(item["actor"]), label_id=int(item["label"]),
                crops=item["crops"], pts=item["pts"], key_faces=item["key_faces"], frames=int(item["frames"]),
                frames_without_face=int(item["frames_without_face"]), windows=item["windows"],
                window_starts=item["window_starts"]))
    return AvCache(directory=directory, manifest=manifest, clips=clips)
