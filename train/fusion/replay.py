"""RAVDESS audio-visual clips replayed through the daemon: how soon it names each clip's emotion, and whether it
ends on it.

Each clip runs through the real daemon (``edge.app.daemon.Daemon``: the file source in real time, the
configured detector, models, fusion and smoothing), its payloads kept by an in-memory JSON-lines sink.
The label the daemon reports over time is that of its newest event with a label, whatever the track
(one actor per clip: a face track, or the voice track 0 while no face is tracked). Per clip: the media time
of the first event naming the clip's emotion (7-class taxonomy: calm counts as neutral), the share of
the time from the first label to the clip's end spent on it, and the label the clip ends on. Media time
is an event's capture stamp minus the file source's origin (the clock time of media time 0).
"""

from __future__ import annotations

import io
import json
import statistics
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from edge.app.daemon import Daemon
from edge.capture.file_replay import FileReplaySource
from edge.config.schema import Config
from edge.errors import InputError
from edge.events.envelope import Envelope
from edge.events.jsonlines import JsonLinesSink
from edge.features.video import open_clip
from edge.taxonomy import to_emotion7
from train.data.ravdess import RavdessTake


def replay_config(config: Config, clip: Path) -> Config:
    """``config`` with ``clip`` as its one real-time source and output to the JSON-lines sink only."""
    return replace(config,
                   source=replace(config.source, video=f"file://{clip}", audio=None, realtime=True, loop=False),
                   output=replace(config.output, mqtt_url=None, stats_interval_s=1e6, state_interval_s=1e6))


def label_timeline(payloads: Sequence[dict[str, Any]], origin: float) -> list[tuple[float, str]]:
    """(media time, label) of every event that carries a label, in capture order."""
    events = [p for p in payloads if p["schema"].startswith("emotion-edge/events/") and p["label"] is not None]
    return sorted((round(p["capture_ts"] - origin, 3), str(p["label"])) for p in events)


def score_clip(timeline: Sequence[tuple[float, str]], truth: str, duration_s: float) -> dict[str, Any]:
    """Time to the first correct label, share of the labelled time on it, and the final label."""
    if not timeline:
        return {"first_label_s": None, "time_to_correct_s": None, "correct_share": 0.0, "final_label": None,
                "ends_correct": False, "label_changes": 0}
    first_correct = next((t for t, label in timeline if label == truth), None)
    ends = [*[t for t, _ in timeline[1:]], max(duration_s, timeline[-1][0])]
    on_truth = sum(end - t for (t, label), end in zip(timeline, ends, strict=True) if label == truth)
    labelled = ends[-1] - timeline[0][0]
    changes = sum(1 for (_, a), (_, b) in zip(timeline, timeline[1:], strict=False) if a != b)
    return {"first_label_s": timeline[0][0], "time_to_correct_s": first_correct,
            "correct_share": on_truth / labelled if labelled > 0 else float(timeline[-1][1] == truth),
            "final_label": timeline[-1][1], "ends_correct": timeline[-1][1] == truth, "label_changes": changes}


def replay_clip(config: Config, take: RavdessTake) -> dict[str, Any]:
    """Run the daemon on one clip; its score, timeline and exit status."""
    stream = io.StringIO()
    daemon = Daemon(replay_config(config, take.path), JsonLinesSink(Envelope("replay"), stream))
    source = next(s for s in daemon.pipeline.sources if isinstance(s, FileReplaySource))
    status = daemon.run()
    if status != 0 or source.origin is None:
        raise InputError(f"{take.path}: the daemon stopped with status {status} (see the log above)")
    payloads = [json.loads(line) for line in stream.getvalue().splitlines()]
    stats = [p for p in payloads if p["schema"].startswith("emotion-edge/stats/")][-1]
    timeline = label_timeline(payloads, source.origin)
    truth = to_emotion7(take.label)
    return {"take_id": take.take_id, "truth": truth, **score_clip(timeline, truth, open_clip(take.path).duration),
            "frames_dropped": stats["frames_dropped"], "timeline": timeline}


def replay_clips(config: Config, takes: Sequence[RavdessTake]) -> list[dict[str, Any]]:
    """``replay_clip`` for each take, with a progress bar."""
    return [replay_clip(config, take) for take in tqdm(takes, desc="daemon replay", unit="clip")]


def summary(clips: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Share of clips ending on their label, median and mean time to the correct label where it came."""
    times = [c["time_to_correct_s"] for c in clips if c["time_to_correct_s"] is not None]
    return {"clips": len(clips), "ends_correct": sum(c["ends_correct"] for c in clips) / len(clips),
            "reached_correct": len(times) / len(clips),
            "median_time_to_correct_s": statistics.median(times) if times else None,
            "mean_time_to_correct_s": statistics.fmean(times) if times else None,
            "mean_correct_share": sum(c["correct_share"] for c in clips) / len(clips)}
