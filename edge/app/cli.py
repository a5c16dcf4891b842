"""The ``emotion-edge`` command line: the device-side entry points."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from edge.app.bench_clip import tiled_clip
from edge.app.bench_latency import format_table, run_benchmark, run_variants, variant_rows
from edge.app.bench_models import DEFAULT_BENCH_MODELS, bench_models
from edge.app.bench_plot import save_bench_png
from edge.app.cli_support import run_main
from edge.app.daemon import Daemon, shutdown_signals
from edge.app.fleet import collect
from edge.app.soak import soak
from edge.app.text_table import format_table as format_text_table
from edge.capture import FILE_SCHEME, replay_path
from edge.capture.devices import list_cameras, list_microphones
from edge.config.loader import apply_overrides, load_config, parse_overrides
from edge.config.render import check_config
from edge.config.schema import Config
from edge.demo import DEMO_CLIP
from edge.errors import InputError
from edge.events.live import LIVE_HINT, LiveViewSink, rich_available
from edge.features.alignment import AlignParams
from edge.models.loading import create_detector, load_models
from edge.offline.classify import IMAGE_SUFFIXES, Classifier
from edge.offline.feature_report import ReportSettings, describe_media
from edge.offline.pyplot import pyplot
from edge.offline.timeline import build_timeline
from edge.offline.timeline_plot import save_timeline_png

DEFAULT_CONFIG = Path("/etc/emotion-edge/config.toml")
BENCH_CLIPS = Path("runs/bench_clips")


def _add_face_sampling_options(parser: argparse.ArgumentParser, every_nth: int) -> None:
    """Options of the commands that detect faces in files: frame sampling, key faces, detector (config keys)."""
    parser.add_argument(
        "--every-nth", type=int, default=every_nth, help="video: detect faces on every Nth frame (default: %(default)s)"
    )
    parser.add_argument("--key-face-radius", type=int, metavar="R",
                        help="pipeline.key_face_radius: key faces from windows of 2r+1 faces shifted by r")
    parser.add_argument("--detector", type=Path, metavar="ONNX", help="detector.model: YuNet ONNX weights")
    parser.add_argument("--score-threshold", type=float, metavar="S",
                        help="detector.score_threshold: minimum face detection score")
    parser.add_argument("--config", type=Path, help="TOML configuration file whose settings apply (as for run)")
    _add_set_option(parser, "override one config key, TOML value syntax (repeatable)")


def _face_sampling_flags(args: argparse.Namespace) -> dict[str, tuple[str, object]]:
    return {"pipeline.key_face_radius": ("--key-face-radius", args.key_face_radius),
            "detector.model": ("--detector", args.detector),
            "detector.score_threshold": ("--score-threshold", args.score_threshold)}


def _add_features_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "features",
        help="run the feature pipeline (VAD, MFCC windows, faces, key faces) over media files",
        description="Decode each file, find speech segments, cut MFCC windows, detect and align faces "
        "and pick key faces; print one JSON line per finding. No pixels or samples are printed.",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        default=[DEMO_CLIP],
        help="audio or video files (default: the bundled RAVDESS clip %(default)s)",
    )
    _add_face_sampling_options(parser, every_nth=3)
    parser.add_argument(
        "--crop-size",
        type=int,
        default=AlignParams().crop_size,
        help="side of the aligned gray face crop in pixels, 48..64 (default: %(default)s)",
    )
    parser.set_defaults(run=_run_features)


def _run_features(args: argparse.Namespace) -> int:
    config = with_flags(args, _face_sampling_flags(args))
    settings = ReportSettings(align=AlignParams(crop_size=args.crop_size), every_nth=args.every_nth,
                              key_face_radius=config.pipeline.key_face_radius)
    detector = create_detector(config.detector, config.models)
    return _print_each(args.paths, lambda path: describe_media(path, settings, detector))


def _add_classify_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "classify",
        help="classify image, audio and video files with the shipped ONNX models (one JSON line per file)",
        description="For each file print its emotion label and posterior per class (7-class taxonomy), and for "
        "video the result of each modality and how they were fused (fusion: model, decision, face_only or "
        "speech_only, as in the daemon's events). Images: the first detected face is aligned and classified. Audio: "
        "silence is trimmed and the 1 s MFCC windows' posteriors averaged. Video with a fusion head: the head's "
        "mean posterior over every pair of a speech window and a key face. Models, backend, detector, key faces and "
        "fusion weights come from the same configuration as the daemon's (--config, --set); the flags below set "
        "single keys of it.",
    )
    parser.add_argument("paths", nargs="+", type=Path, help="image (jpg, png, ...), audio or video files")
    parser.add_argument("--speech-model", type=Path, metavar="ONNX",
                        help="models.speech: speech model with its .json sidecar (default: the shipped one)")
    parser.add_argument("--face-model", type=Path, metavar="ONNX",
                        help="models.face: face model with its .json sidecar (default: the shipped one)")
    parser.add_argument(
        "--fusion-model",
        type=Path,
        metavar="ONNX",
        help="models.fusion: model-level fusion head (fusion_head.onnx of `emotion-export onnx --fusion`) made for "
        "these speech and face models (default: the shipped head with the shipped models; this release ships none)",
    )
    parser.add_argument(
        "--decision-fusion",
        action="store_true",
        help="models.model_fusion = false: fuse at the decision level even where a fusion head is available",
    )
    parser.add_argument("--no-speech", action="store_true", help="do not run the speech model")
    parser.add_argument("--no-face", action="store_true", help="do not run the face model")
    parser.add_argument(
        "--face-crops",
        action="store_true",
        help="images are already aligned face crops (e.g. FER2013): skip face detection",
    )
    _add_face_sampling_options(parser, every_nth=1)
    parser.add_argument(
        "--timeline",
        type=Path,
        metavar="PNG",
        help="also draw face (per track), speech and fused posteriors over time, key faces and voiced segments "
        "marked, as a PNG (one video file; needs the plots extra)",
    )
    parser.add_argument("--speech-weight", type=float, metavar="W",
                        help="pipeline.speech_weight: decision fusion weight of speech")
    parser.add_argument("--face-weight", type=float, metavar="W",
                        help="pipeline.face_weight: decision fusion weight of faces")
    parser.set_defaults(run=_run_classify)


def classify_config(args: argparse.Namespace) -> Config:
    """The configuration ``emotion-edge classify`` uses: file, then --set, then the flags that name keys."""
    if args.fusion_model is not None and (args.no_speech or args.no_face):
        raise InputError("--fusion-model fuses speech and faces: it cannot be used with --no-speech or --no-face")
    flags = {**_face_sampling_flags(args),
             "models.speech": ("--speech-model", args.speech_model), "models.face": ("--face-model", args.face_model),
             "models.fusion": ("--fusion-model", args.fusion_model),
             "models.model_fusion": ("--decision-fusion", False if args.decision_fusion else None),
             "pipeline.speech_weight": ("--speech-weight", args.speech_weight),
             "pipeline.face_weight": ("--face-weight", args.face_weight)}
    return with_flags(args, flags)


def _run_classify(args: argparse.Namespace) -> int:
    config = classify_config(args)
    models = load_models(config, video=not args.no_face, audio=not args.no_speech)
    classifier = Classifier(models, config, every_nth=args.every_nth, face_crops=args.face_crops)
    if args.timeline is not None:
        if len(args.paths) != 1 or args.paths[0].suffix.lower() in IMAGE_SUFFIXES:
            raise InputError("--timeline draws one video file: give exactly one video path")
        status = _print_each(args.paths, lambda path: [classifier.classify(path)])
        if status == 0:
            written = save_timeline_png(build_timeline(classifier, args.paths[0]), args.timeline)
            logging.getLogger("emotion-edge").info("timeline written to %s", written)
        return status
    return _print_each(args.paths, lambda path: [classifier.classify(path)])


def _add_set_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--set SECTION.KEY=VALUE`` (repeatable), collected in ``args.overrides``."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help=help_text)


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """The options that make the daemon's configuration: a file, --set overrides and convenience flags."""
    parser.add_argument("--config", type=Path, help="TOML configuration file (see systemd/config.example.toml)")
    _add_set_option(parser, "override one config key, TOML value syntax (repeatable), e.g. --set "
                            "pipeline.detect_every=2")
    parser.add_argument(
        "--source", metavar="URI", help="source.video: v4l2:///dev/video0, csi://0, gst://..., file://clip.mp4 or a "
        "file path"
    )
    parser.add_argument("--mic", metavar="DEVICE", help="source.audio: microphone name, index or 'default'")
    parser.add_argument(
        "--mqtt", metavar="URL", help="output.mqtt_url: mqtt://host[:port] (default: JSON lines on stdout)"
    )
    parser.add_argument(
        "--realtime",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="source.realtime: replay files at their own pace (--no-realtime: as fast as possible)",
    )
    parser.add_argument(
        "--loop", action=argparse.BooleanOptionalAction, default=None, help="source.loop: replay files endlessly"
    )


def _add_run_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "run",
        help="run the daemon: capture, recognise emotions, publish events (default: replay the bundled clip)",
        description="Run the pipeline from a TOML config (every key has a default) until the source ends, or "
        "SIGTERM/SIGINT. Without --config and without a source, the bundled RAVDESS clip is replayed in real time "
        "with the shipped models and every payload is printed as a JSON line. Flags override the config.",
    )
    _add_config_options(parser)
    parser.add_argument(
        "--format",
        choices=("auto", "jsonl", "live"),
        default="auto",
        help="without a broker: jsonl prints every payload as a JSON line; live draws one line per track and a "
        "health line in place (the live extra; stats every 2 s at most); auto (default): live when stdout is a "
        "terminal and rich is installed, else jsonl",
    )
    parser.set_defaults(run=_run_daemon)


def with_flags(args: argparse.Namespace, flags: dict[str, tuple[str, object]]) -> Config:
    """The config file (``--config``), then ``--set`` and the flags given (``key: (flag, value)``) in one step,
    so that settings checked together (a TLS file and an mqtts:// URL) may come from either; errors name the flag."""
    config = load_config(args.config) if args.config else Config()
    overrides: dict[str, object] = dict(parse_overrides(args.overrides))
    given = {key: (flag, value) for key, (flag, value) in flags.items() if value is not None}
    overrides.update({key: value for key, (_, value) in given.items()})
    return apply_overrides(config, overrides, origins={key: flag for key, (flag, _) in given.items()})


def run_config(args: argparse.Namespace) -> Config:
    """The configuration ``emotion-edge run`` uses: file, then --set, then the convenience flags."""
    flags = (
        ("--source", "source.video", args.source),
        ("--mic", "source.audio", args.mic),
        ("--mqtt", "output.mqtt_url", args.mqtt),
        ("--realtime/--no-realtime", "source.realtime", args.realtime),
        ("--loop/--no-loop", "source.loop", args.loop),
    )
    config = with_flags(args, {key: (flag, value) for flag, key, value in flags})
    if args.config is None and config.source.video is None and config.source.audio is None:
        config = apply_overrides(config, {"source.video": f"{FILE_SCHEME}{DEMO_CLIP}"})
    return config


def live_view_wanted(choice: str, config: Config) -> bool:
    """Whether ``run --format choice`` draws the live view (see its help)."""
    if config.output.mqtt_url is not None:
        if choice == "live":
            raise InputError("--format live replaces the JSON lines on stdout: it cannot be used with output.mqtt_url")
        return False
    if choice != "auto":
        return choice == "live"
    if not sys.stdout.isatty():
        return False
    if not rich_available():
        logging.getLogger("emotion-edge").info("printing JSON lines: %s", LIVE_HINT)
        return False
    return True


def _run_daemon(args: argparse.Namespace) -> int:
    config = run_config(args)
    if args.log_level is None:
        logging.getLogger().setLevel(config.service.log_level)
    stop = threading.Event()
    with shutdown_signals(stop):   # from start-up to exit: a SIGTERM while models load, or a second one, stops cleanly
        if not live_view_wanted(args.format, config):
            return Daemon(config, stop_requested=stop).run()
        config = apply_overrides(config, {"output.stats_interval_s": min(config.output.stats_interval_s, 2.0)})
        return Daemon(config, LiveViewSink(), stop_requested=stop).run()


def _add_bench_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "bench",
        help="measure capture-to-publish latency, model times and CPU use on a clip replayed in real time",
        description="Run the daemon in this process on a file (default: the bundled clip, looped) for --seconds, "
        "then print a table of latency percentiles, model and detector times, drops, CPU time and peak memory, "
        "and write them as JSON.",
    )
    _add_config_options(parser)
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run (default: %(default)s)")
    parser.add_argument(
        "--variant", action="append", default=[], metavar="NAME:SECTION.KEY=VALUE[,...]",
        help="compare against this variant of the configuration (repeatable), e.g. --variant "
        "int8:models.int8=true; the configuration itself runs as 'base', all alternating for --rounds rounds",
    )
    parser.add_argument(
        "--faces", type=int, action="append", default=[], metavar="N",
        help="compare against the same source with N faces in frame (repeatable): the take tiled into a grid, "
        "its sound kept, made once under runs/bench_clips/",
    )
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of every variant with --variant or --faces (default 3)")
    parser.add_argument(
        "--out", type=Path, default=Path("runs/bench_latency.json"),
        help="JSON output (default: %(default)s; runs/ is git-ignored in a checkout)"
    )
    parser.add_argument("--png", type=Path, default=None, metavar="PATH",
                        help="also draw CPU by step per variant, step times and latency as a PNG (plots extra)")
    parser.set_defaults(run=_run_bench)


def bench_variants(base: Config, variants: list[str], faces: Sequence[int] = (),
                   clips: Path = BENCH_CLIPS) -> dict[str, Config]:
    """``{"base": base, NAME: base with the overrides, ..., facesN: base on the N-face clip}`` from
    ``NAME:KEY=VALUE[,KEY=VALUE]`` strings and face counts."""
    configs = {"base": base}
    for count in faces:
        take = replay_path(base.source.video or "")
        if take is None:
            raise InputError(f"--faces: the source must be a file to tile, not {base.source.video!r}")
        clip = tiled_clip(take, count, clips)
        configs[f"faces{count}"] = replace(base, source=replace(base.source, video=f"{FILE_SCHEME}{clip}"))
    for text in variants:
        name, sep, overrides = text.partition(":")
        if not sep or not name or name in configs:
            raise InputError(f"--variant {text!r}: expected a new NAME:SECTION.KEY=VALUE[,...], e.g. "
                             "int8:models.int8=true")
        configs[name] = apply_overrides(base, parse_overrides(overrides.split(",")))
    return configs


def _run_bench(args: argparse.Namespace) -> int:
    if args.loop is None and args.source is None and args.config is None:
        args.loop = True
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.png is not None:
        pyplot("the bench picture")   # before the run: a missing extra is said at once, not after minutes
    if args.variant or args.faces:
        runs = run_variants(bench_variants(run_config(args), args.variant, args.faces), args.seconds, args.rounds)
        rows = variant_rows(runs)
        print(format_text_table(rows, list(rows[0]), digits=1))
        args.out.write_text(json.dumps({"variants": args.variant, "faces": args.faces, "summary": rows,
                                        "runs": runs}, indent=2) + "\n")
    else:
        result = run_benchmark(run_config(args), args.seconds)
        runs = {"base": [result]}
        print(format_table(result))
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")
    if args.png is not None:
        print(f"picture written to {save_bench_png(runs, args.png)}")
    return max(int(r["exit_status"]) for results in runs.values() for r in results)


def _add_bench_models_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "bench-models",
        help="time each model alone: batch x precision (FP32, INT8 forms) x backend, calls interleaved",
        description="Time every model given (default: the shipped speech CNN, face CNN and YuNet) in every form "
        "beside it (FP32, the CPU and TensorRT INT8 twins) on every backend here (ONNX Runtime on the CPU; TensorRT "
        "where it and a built engine exist, else the row says why), at each batch size, on random inputs, the calls "
        "alternating round by round; prints median/p10/p90 per call and per item and writes JSON.",
    )
    parser.add_argument("--model", type=Path, action="append", default=None, metavar="ONNX",
                        help="a model with its sidecar (repeatable; default: the shipped three)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8],
                        help="batch sizes, where the graph takes them (default: 1 4 8)")
    parser.add_argument("--repeats", type=int, default=200, help="timed rounds (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed rounds first (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads of every model (default: %(default)s, as on a busy device)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_models.json"),
                        help="JSON output (default: %(default)s)")
    parser.set_defaults(run=_run_bench_models)


def _run_bench_models(args: argparse.Namespace) -> int:
    models = args.model or list(DEFAULT_BENCH_MODELS)
    rows = bench_models(models, args.batches, args.repeats, args.warmup, args.threads)
    timed = [row for row in rows if "skipped" not in row]
    print(format_text_table(timed, ("model", "form", "backend", "batch", "median_ms", "per_item_ms", "p10_ms",
                                    "p90_ms", "vs_fp32"), digits=3))
    for row in rows:
        if "skipped" in row:
            print(f"skipped {row['model']} {row['form']} on {row['backend']}: {row['skipped']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"threads": args.threads, "repeats": args.repeats, "warmup": args.warmup,
                                    "rows": rows}, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


def _add_soak_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "soak",
        help="run the daemon for a long time and watch its memory, file descriptors and threads (Linux)",
        description="Start `emotion-edge run` (default: the demo clip looped in real time) as a child process, "
        "sample its RSS, fds and threads every --interval s from /proc, stop it with SIGTERM after --seconds, "
        "and print the RSS slope after --warmup and the fd and thread ranges; writes JSON.",
    )
    parser.add_argument("--seconds", type=float, default=600.0, help="how long to run (default: %(default)s)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples (default: %(default)s)")
    parser.add_argument("--warmup", type=float, default=30.0, help="samples before this are left out of the "
                        "slope and ranges (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("runs/soak.json"), help="JSON output (default: %(default)s)")
    parser.add_argument("run_args", nargs=argparse.REMAINDER,
                        help="arguments for `emotion-edge run` after --, e.g. -- --mqtt mqtt://127.0.0.1:1883")
    parser.set_defaults(run=_run_soak)


def _run_soak(args: argparse.Namespace) -> int:
    run_args = [a for a in args.run_args if a != "--"] or ["--source", str(DEMO_CLIP), "--loop", "--format", "jsonl"]
    result = soak(run_args, args.seconds, args.interval, args.warmup)
    slope = result["rss_slope_mib_per_min"]
    print(f"ran {args.seconds:.0f} s: RSS {result['rss_mib']} MiB (slope "
          f"{'-' if slope is None else f'{slope:+.2f}'} MiB/min after {args.warmup:.0f} s), fds {result['fds']}, "
          f"threads {result['threads']}, still running at the end: {result['alive_at_end']}, exit status "
          f"{result['exit_status']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0 if result["alive_at_end"] and result["exit_status"] == 0 else 1


def _add_devices_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "devices",
        help="list cameras (/dev/video*, probed with OpenCV) and microphones (sounddevice input devices)",
        description="One JSON line per camera (its URI for source.video, whether it opens, size and rate) and "
        "per microphone (index and name for source.audio, channels, default rate).",
    )
    parser.set_defaults(run=_run_devices)


def _run_devices(args: argparse.Namespace) -> int:
    """Print each device; say on stderr when a kind has none, and exit 1 when microphones cannot be listed."""
    log = logging.getLogger("emotion-edge")
    cameras = list_cameras()
    try:
        microphones = list_microphones()
    except InputError as exc:
        microphones, status = [], 1
        log.error("microphones cannot be listed: %s", exc)
    else:
        status = 0
        if not microphones:
            log.warning("no microphone found (no PortAudio device with input channels)")
    if not cameras:
        log.warning("no camera found (no /dev/video* device)")
    for record in [*cameras, *microphones]:
        print(json.dumps(record), flush=True)
    return status


def _add_fleet_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "fleet",
        help="show the latest state of every board on a central broker (docs/fleet.md)",
        description="Subscribe to <prefix>/+/available, state and bridge on the broker, wait for the retained "
        "values, and print one row per board: online, uplink, tracks, the most prominent track's emotion, state age.",
    )
    parser.add_argument("--config", type=Path, help="TOML file whose [output] section has the broker's credentials/TLS")
    _add_set_option(parser, "override one config key (repeatable), e.g. --set output.username=ops")
    parser.add_argument("--mqtt", metavar="URL", help="output.mqtt_url: the central broker, mqtt(s)://host[:port]")
    parser.add_argument("--wait", type=float, default=2.0, help="seconds to collect retained values (default 2)")
    parser.add_argument("--json", action="store_true", help="one JSON line per board instead of a table")
    parser.set_defaults(run=_run_fleet)


def _run_fleet(args: argparse.Namespace) -> int:
    config = with_flags(args, {"output.mqtt_url": ("--mqtt", args.mqtt)})
    rows = [board.summary(time.time()) for board in collect(config.output, args.wait).values()]
    if not rows:
        logging.getLogger("emotion-edge").warning("no board has published on %s under %s/", config.output.mqtt_url,
                                                  config.output.prefix)
    if args.json:
        return _print_records(rows)
    columns = ("device", "available", "uplink", "tracks", "emotion", "confidence", "state_age_s")
    cells = [[("-" if row[c] is None else str(row[c])) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    for line in [list(columns), *cells]:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip(), flush=True)
    return 0


def _print_records(records: Iterable[dict]) -> int:
    for record in records:
        print(json.dumps(record), flush=True)
    return 0


def _add_check_config_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "check-config",
        help="check a config file and print the effective configuration",
        description="Load the TOML file and the --set overrides; print the effective configuration (exit 0) or "
        "the error naming the file, line and key (exit 2).",
    )
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    _add_set_option(parser, "override one config key (repeatable)")
    parser.set_defaults(run=lambda args: check_config(args.path, args.overrides))


def _print_each(paths: Sequence[Path], describe: Callable[[Path], Iterable[dict]]) -> int:
    """Print the JSON records of each path; a bad file is logged and the others still run."""
    failures = 0
    for path in paths:
        try:
            for record in describe(path):
                print(json.dumps(record), flush=True)
        except InputError as exc:
            logging.getLogger("emotion-edge").error("%s", exc)
            failures += 1
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emotion-edge", description="Audio-visual emotion recognition on the edge.")
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level for messages on stderr (default: INFO; for run, the config's service.log_level)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_features_command(commands)
    _add_classify_command(commands)
    _add_run_command(commands)
    _add_bench_command(commands)
    _add_bench_models_command(commands)
    _add_soak_command(commands)
    _add_devices_command(commands)
    _add_fleet_command(commands)
    _add_check_config_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
