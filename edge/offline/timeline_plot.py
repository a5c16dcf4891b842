"""Draws a ``Timeline`` as a PNG: per face track its face and fused posteriors, and the speech posteriors.

One panel per face track (face posterior as thin lines, fused posterior as thick ones, key faces
as ticks at the top), then one speech panel with the voiced segments shaded; one colour per
emotion throughout. Needs matplotlib (the ``plots`` extra); the device's base install does not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.offline.pyplot import pyplot
from edge.offline.timeline import Timeline
from edge.taxonomy import EMOTIONS


def save_timeline_png(timeline: Timeline, path: str | Path) -> Path:
    """Write the picture of ``timeline`` to ``path`` (PNG) and return the path."""
    plt = pyplot("the timeline")
    colours = plt.get_cmap("tab10")(np.arange(len(EMOTIONS)))
    panels = len(timeline.tracks) + 1
    figure, axes = plt.subplots(panels, 1, figsize=(11, 2.4 * panels), sharex=True, squeeze=False)
    for ax, track in zip(axes[:-1, 0], timeline.tracks, strict=True):
        times, face, fused = np.array(track.times), np.array(track.face), np.array(track.fused)
        for k, label in enumerate(EMOTIONS):
            ax.plot(times, face[:, k], color=colours[k], linewidth=0.8, alpha=0.6)
            ax.plot(times, fused[:, k], color=colours[k], linewidth=2.2, label=label)
        ax.plot(times[track.key_faces], np.full(len(track.key_faces), 1.04), "v", color="black", markersize=5,
                clip_on=False, label="key face")
        methods = ", ".join(sorted(set(track.fusion)))
        ax.set_title(f"face track {track.track_id}: face posterior (thin), fused (thick; {methods})", fontsize=9,
                     loc="left")
    speech_ax = axes[-1, 0]
    for start, end in timeline.voiced:
        speech_ax.axvspan(start, end, color="0.9", zorder=0)
    for k, label in enumerate(EMOTIONS):
        speech_ax.plot(timeline.speech_times, timeline.speech[:, k], "o-", color=colours[k], markersize=3,
                       label=label if not timeline.tracks else None)
    speech_ax.set_title("speech: posterior per MFCC window (centre time), voiced segments shaded" if
                        len(timeline.speech_times) else "speech: no voiced audio", fontsize=9, loc="left")
    for ax in axes[:, 0]:
        ax.set_ylim(0, 1)
        ax.set_xlim(0, max(timeline.duration, 1e-3))
        ax.set_ylabel("probability")
    speech_ax.set_xlabel("time (s)")
    axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    figure.suptitle(timeline.path.name, x=0.01, ha="left", fontsize=10)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
