"""Runs the device's feature pipeline over one media file and describes what it found.

``emotion-edge features`` prints it, to see what the daemon's feature stages make of a file: it
decodes a clip, finds speech with the VAD, cuts MFCC windows, detects and aligns faces and picks
key faces, and yields one JSON-ready record per finding. Nothing raw (pixels, samples) leaves it:
only times, boxes, counts and shapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.detectors.face import FaceDetector
from edge.errors import NoVideoStreamError
from edge.features.alignment import AlignParams, align_face
from edge.features.audio import load_audio
from edge.features.keyfaces import key_face_indices
from edge.features.mfcc import MfccParams, mfcc_windows, window_times
from edge.features.vad import VadParams, speech_segments, trim_silence
from edge.features.video import AVClip, open_clip


@dataclass(frozen=True)
class ReportSettings:
    """What the report runs: feature parameters, detector, frame sampling and key-face radius."""

    every_nth: int
    key_face_radius: int
    mfcc: MfccParams = field(default_factory=MfccParams)
    vad: VadParams = field(default_factory=VadParams)
    align: AlignParams = field(default_factory=AlignParams)


def _round(value: float) -> float:
    return round(float(value), 3)


def _speech_records(audio: np.ndarray, offset: float, settings: ReportSettings) -> Iterator[dict[str, Any]]:
    sample_rate = settings.mfcc.sample_rate
    segments = speech_segments(audio, sample_rate, settings.vad)
    for start, end in segments:
        yield {"type": "speech_segment", "start_s": _round(offset + start), "end_s": _round(offset + end)}
    if not segments:
        yield {"type": "mfcc_windows", "count": 0, "reason": "no speech found by the VAD"}
        return
    speech = trim_silence(audio, sample_rate, settings.vad)
    windows = mfcc_windows(speech, settings.mfcc)
    speech_start = offset + segments[0][0]
    yield {
        "type": "mfcc_windows",
        "count": len(windows),
        "shape": list(windows.shape[1:]),
        "window_s": settings.mfcc.window_s,
        "hop_s": settings.mfcc.hop_s,
        "speech_s": _round(speech.size / sample_rate),
        "starts_s": [_round(speech_start + t) for t in window_times(len(windows), settings.mfcc)],
    }


def _face_records(clip: AVClip, settings: ReportSettings, detector: FaceDetector) -> Iterator[dict[str, Any]]:
    crops, crop_times, sampled = [], [], 0
    for frame in clip.frames(settings.every_nth):
        sampled += 1
        faces = detector.detect(frame.image)
        for face in faces:
            yield {
                "type": "face",
                "pts_s": _round(frame.pts),
                "box": [round(float(v), 1) for v in face.box],
                "score": _round(face.score),
            }
        if faces:
            crops.append(align_face(frame.image, faces[0].landmarks, settings.align))
            crop_times.append(frame.pts)
    keys = key_face_indices(crops, settings.key_face_radius) if crops else []
    yield {
        "type": "faces_summary",
        "frames_sampled": sampled,
        "frames_with_face": len(crops),
        "crop_size": settings.align.crop_size,
        "key_faces_pts_s": [_round(crop_times[i]) for i in keys],
    }


def describe_media(path: str | Path, settings: ReportSettings, detector: FaceDetector) -> Iterator[dict[str, Any]]:
    """Records describing an audio or audio-visual file, clip facts first, a summary of faces last."""
    path = Path(path)
    try:
        clip = open_clip(path, settings.mfcc.sample_rate)
    except NoVideoStreamError:
        audio = load_audio(path, settings.mfcc.sample_rate)
        yield {
            "type": "clip",
            "path": str(path),
            "video": False,
            "audio_s": _round(audio.size / settings.mfcc.sample_rate),
        }
        yield from _speech_records(audio, 0.0, settings)
        return
    yield {
        "type": "clip",
        "path": str(path),
        "video": True,
        "fps": _round(clip.fps),
        "duration_s": _round(clip.duration),
        "audio_s": _round(clip.audio.size / settings.mfcc.sample_rate),
    }
    yield from _speech_records(clip.audio, clip.audio_start, settings)
    yield from _face_records(clip, settings, detector)
