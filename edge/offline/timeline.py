"""Posteriors over time for one video file: per face track, for speech, and fused (``classify --timeline``).

The same models and features as ``classify``, kept per time step instead of averaged: every
sampled frame's faces are followed by the daemon's IoU tracker and each tracked face is aligned
and classified; the voiced audio (VAD) is cut into the model's MFCC windows, each placed at its
centre time; each face posterior is fused with the speech window nearest in time (within
``pipeline.fusion_tolerance_s``) by the daemon's rule (``edge.fusion.decision.fuse``). Key faces (per track, the
medoids ``classify`` averages) and the voiced segments are recorded so that the picture can mark
them. ``edge.offline.timeline_plot`` draws it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.errors import NoAudioStreamError
from edge.features.alignment import align_face
from edge.features.keyfaces import key_face_indices
from edge.features.mfcc import mfcc_windows, window_times
from edge.features.vad import speech_segments, trim_silence
from edge.features.video import iter_video_frames, open_clip
from edge.fusion.decision import fuse, softmax, to_emotions
from edge.offline.classify import Classifier
from edge.pipeline.tracking import IouTracker


@dataclass
class TrackSeries:
    """One face track: times (s), face posteriors and fused posteriors (n, 7), key-face indices."""

    track_id: int
    times: list[float] = field(default_factory=list)
    face: list[np.ndarray] = field(default_factory=list)
    fused: list[np.ndarray] = field(default_factory=list)
    fusion: list[str] = field(default_factory=list)
    key_faces: list[int] = field(default_factory=list)


@dataclass
class Timeline:
    """What ``classify --timeline`` draws for one file."""

    path: Path
    duration: float
    tracks: list[TrackSeries]
    speech_times: np.ndarray
    speech: np.ndarray
    voiced: list[tuple[float, float]]
    speech_embeddings: np.ndarray | None = None


def _speech_series(classifier: Classifier, path: Path) -> tuple[np.ndarray, np.ndarray, list[tuple[float, float]],
                                                                 np.ndarray | None]:
    """Centre times (s), posteriors (n, 7), voiced segments and embeddings of the file's audio windows."""
    empty: tuple[np.ndarray, np.ndarray, list[tuple[float, float]], np.ndarray | None] = (
        np.zeros(0), np.zeros((0, 7)), [], None)
    if classifier.speech is None:
        return empty
    try:
        clip = open_clip(path, classifier.mfcc.sample_rate)
    except NoAudioStreamError:
        return empty
    rate = classifier.mfcc.sample_rate
    segments = speech_segments(clip.audio, rate, classifier.vad)
    voiced = [(clip.audio_start + a, clip.audio_start + b) for a, b in segments]
    audio = trim_silence(clip.audio, rate, classifier.vad)
    if audio.size == 0:
        return np.zeros(0), np.zeros((0, 7)), voiced, None
    outputs = classifier.speech.run(mfcc_windows(audio, classifier.mfcc))
    posteriors = np.stack([to_emotions(p, classifier.speech.sidecar.labels) for p in softmax(outputs["logits"])])
    times = voiced[0][0] + window_times(len(posteriors), classifier.mfcc) + classifier.mfcc.window_s / 2
    return times, posteriors, voiced, outputs.get("embedding")


def build_timeline(classifier: Classifier, path: str | Path) -> Timeline:
    """The posteriors over time of a video file (see the module docstring)."""
    path = Path(path)
    speech_times, speech, voiced, speech_embeddings = _speech_series(classifier, path)
    settings = classifier.config.pipeline
    tracker = IouTracker(settings)
    series: dict[int, TrackSeries] = {}
    crops: dict[int, list[np.ndarray]] = {}
    end = 0.0
    for frame in iter_video_frames(path, classifier.every_nth):
        end = frame.pts
        if classifier.face is None:
            continue
        for track in tracker.update(classifier.detect(frame.image), frame.pts).matched:
            crop = align_face(frame.image, track.face.landmarks, classifier.align)
            crops.setdefault(track.track_id, []).append(crop)
            entry = series.setdefault(track.track_id, TrackSeries(track.track_id))
            entry.times.append(frame.pts)
    for track_id, entry in series.items():
        track_crops = np.stack(crops[track_id])
        assert classifier.face is not None
        outputs = classifier.face.run(track_crops.astype(np.float32)[:, None])
        embeddings = outputs.get("embedding")
        for i, (t, posterior) in enumerate(zip(entry.times, softmax(outputs["logits"]), strict=True)):
            face = to_emotions(posterior, classifier.face.sidecar.labels)
            present, vectors = {"face": face}, {"face": None if embeddings is None else embeddings[i]}
            if len(speech_times):
                nearest = int(np.argmin(np.abs(speech_times - t)))
                if abs(speech_times[nearest] - t) <= settings.fusion_tolerance_s:
                    present["speech"] = speech[nearest]
                    vectors["speech"] = None if speech_embeddings is None else speech_embeddings[nearest]
            fused, method = fuse(present, classifier.weights, vectors, classifier.fusion_head,
                                 classifier.config.pipeline.weight_by_confidence, classifier.gate)
            entry.face.append(face)
            entry.fused.append(fused)
            entry.fusion.append(method)
        entry.key_faces = key_face_indices(track_crops, classifier.key_face_radius)
    duration = max([end, *(b for _, b in voiced)])
    return Timeline(path=path, duration=duration, tracks=[series[k] for k in sorted(series)],
                    speech_times=speech_times, speech=speech, voiced=voiced, speech_embeddings=speech_embeddings)
