"""The bench as a PNG: CPU per variant stacked by step, per-step wall times, capture-to-publish latency.

Three panels for one run or a side-by-side comparison: (1) for each variant, its CPU as % of one
core stacked by step (the largest steps named, the rest of every thread and the native pools as
their own segments), the median run's profile; (2) the wall time per call of each step of the
first variant, p50 bar with p99 whisker; (3) the distribution of capture-to-publish latency per
variant (all its runs pooled), as box plots. Needs matplotlib (the ``plots`` extra).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge.app.bench_profile import REST, WHOLE
from edge.offline.pyplot import pyplot

NAMED_STEPS = 9   # the costliest steps get their own colour; the others share one segment


def _label(row: Mapping[str, Any]) -> str:
    thread = "capture" if row["thread"].startswith("capture-") else row["thread"]   # one name whatever the clip
    if row["step"] in (REST, WHOLE):
        return f"{thread} {row['step']}" if row["step"] == REST else thread
    return row["step"]


def _median_run(results: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    cpu = statistics.median_low([r["cpu_percent_of_one_core"] for r in results])
    return next(r for r in results if r["cpu_percent_of_one_core"] == cpu)


def save_bench_png(runs: Mapping[str, Sequence[Mapping[str, Any]]], path: str | Path) -> Path:
    """Write the picture of ``runs`` (variant name -> its runs' results) to ``path`` and return it."""
    plt = pyplot("the bench picture")
    names = list(runs)
    profiles = {name: _median_run(results)["profile"] for name, results in runs.items()}
    totals: dict[str, float] = {}
    for rows in profiles.values():
        for row in rows:
            totals[_label(row)] = totals.get(_label(row), 0.0) + row["cpu_percent_of_one_core"]
    named = sorted(totals, key=lambda label: -totals[label])[:NAMED_STEPS]
    segments = [*named, "other steps and threads"]
    colours = plt.get_cmap("tab10")(np.arange(len(segments)))

    figure, (stacked, steps, latency) = plt.subplots(1, 3, figsize=(17, 7), width_ratios=[1.2, 1.3, 1])
    share = {name: dict.fromkeys(segments, 0.0) for name in names}
    for name in names:
        for row in profiles[name]:
            label = _label(row)
            share[name][label if label in named else segments[-1]] += max(0.0, row["cpu_percent_of_one_core"])
    bottom = np.zeros(len(names))
    for segment, colour in zip(segments, colours, strict=True):
        heights = np.array([share[name][segment] for name in names])
        stacked.bar(names, heights, bottom=bottom, color=colour, label=segment)
        bottom += heights
    stacked.set_ylabel("CPU, % of one core (median run)")
    stacked.set_title("CPU per variant, by step")
    stacked.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
    stacked.tick_params(axis="x", rotation=30)

    timed = [row for row in profiles[names[0]] if row.get("p50_ms") is not None]
    timed.sort(key=lambda row: row["p50_ms"])
    labels = [f"{row['step']} ({row['thread'].removeprefix('stage-')[:18]})" for row in timed]
    p50 = np.array([row["p50_ms"] for row in timed])
    p99 = np.array([row["p99_ms"] for row in timed])
    steps.barh(labels, p50, xerr=[np.zeros_like(p50), p99 - p50], color="tab:blue", ecolor="tab:gray", capsize=2)
    steps.set_xscale("log")
    steps.set_xlabel("wall ms per call: p50 bar, p99 whisker (log)")
    steps.set_title(f"steps of {names[0]!r}")
    steps.tick_params(axis="y", labelsize=7)

    samples = [[value for result in runs[name] for value in result["latency_samples_ms"]] for name in names]
    latency.boxplot(samples, tick_labels=names, showfliers=True, whis=(1, 99))
    latency.set_ylabel("capture -> publish, ms (whiskers p1-p99)")
    latency.set_title("end-to-end latency")
    latency.tick_params(axis="x", rotation=30)

    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)
