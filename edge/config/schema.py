"""Every configuration section: one frozen dataclass per area, each setting with its default, doc and bounds.

The components take these sections as they are (the pipeline's stages, the smoother, the sinks,
the detector factory), so each setting has one name and one default. ``Config`` is the whole
configuration; ``EXAMPLE_OVERRIDES`` what the installed service runs with beyond the defaults.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from edge.config.names import BACKENDS, PROVIDERS
from edge.config.setting import Section, SettingError, setting

MQTT_URL = (r"mqtts?://[^\s/:@]+(:\d{1,5})?/?", "mqtt://host[:port] or mqtts://host[:port]")
TOPIC_LEVEL = (r"[^\s/+#]+", "one MQTT topic level: no spaces, '/', '+' or '#'")


@dataclass(frozen=True)
class SourceConfig(Section):
    """Where frames and audio come from."""

    video: str | None = setting(
        None,
        "Camera or file URI: v4l2:///dev/video0 (V4L2 through OpenCV), csi://0 (Jetson CSI camera via an "
        "nvarguscamerasrc GStreamer pipeline), gst://<pipeline ending in appsink>, file://clip.mp4 or the path of "
        "an existing file (replays the file's video and audio together). Unset: no camera.",
        example="v4l2:///dev/video0",
    )
    audio: str | None = setting(
        None,
        'Microphone: a sounddevice input device name (or part of it), its index, or "default". Unset: no '
        "microphone (a file:// video source brings its own audio track).",
        example="default",
    )
    realtime: bool = setting(True, "file:// sources: replay at the file's own pace (false: as fast as possible).")
    loop: bool = setting(False, "file:// sources: start again at the end instead of stopping.")
    decoder_threads: int = setting(
        0, "file:// sources: FFmpeg decoding threads; 0: FFmpeg's choice (frame threads, about one per core); 1: "
        "decode on the capture thread alone.", minimum=0,
    )


@dataclass(frozen=True)
class PipelineConfig(Section):
    """How frames and audio are processed."""

    detect_every: int = setting(
        5, "Run face detection on every Nth frame; the tracker follows faces in between (5: 6 detections and face "
        "crops a second at 30 fps; 3 costs 11 points more of one core on the bundled clip: docs/performance.md).",
        minimum=1,
    )
    key_face_radius: int = setting(
        2, "Key faces: per track, a sliding window of 2r+1 aligned crops keeps the most typical one, shifted by r.",
        minimum=0,
    )
    max_faces: int = setting(
        4, "Most faces tracked (and classified) at once: faces already tracked keep their tracks, new ones start "
        "while there is room, largest first; the others are counted in stats.faces_dropped.", minimum=1,
    )
    track_min_hits: int = setting(
        2, "Detection rounds in a row that must find a face before it becomes a track (track_appeared).", minimum=1
    )
    track_max_age: int = setting(
        3, "Detection rounds a track may go unseen (turned away, occluded) before it is lost (track_lost).", minimum=0
    )
    track_iou: float = setting(
        0.3, "Least overlap (intersection over union) of a detection with a track's box to continue that track.",
        minimum=0.01, maximum=1.0,
    )
    fusion_tolerance_s: float = setting(
        1.0, "Face and speech results captured at most this many seconds apart are fused for a track.", minimum=0.0
    )
    face_weight: float = setting(
        1.0, "Weight of the face log-posterior in decision-level fusion with fixed weights (used when neither a "
        "fusion head nor the reliability gate fuses the track: models.gated_fusion false, or models other than the "
        "shipped ones without models.gate).", minimum=0.0,
    )
    speech_weight: float = setting(
        1.0, "Weight of the speech log-posterior in decision-level fusion (see face_weight).", minimum=0.0
    )
    weight_by_confidence: bool = setting(
        False, "Decision-level fusion also weighs each modality, per input, by how sure its posterior is (1 minus its "
        "normalised entropy), so that a modality unsure of this face or voice counts less.",
    )
    voice_timeout_s: float = setting(
        3.0, "Track 0, the voice (speech not attributed to a single face), is lost after this long without speech.",
        minimum=0.1,
    )
    frame_queue: int = setting(
        2, "Frames waiting for face detection; when full the oldest is dropped and counted (stats).", minimum=1
    )
    audio_queue: int = setting(
        250, "20 ms audio blocks waiting for the speech stage; when full the oldest is dropped and counted.", minimum=1
    )
    crop_queue: int = setting(
        32, "Aligned face crops waiting for the face CNN; when full the oldest is dropped and counted.", minimum=1
    )
    result_queue: int = setting(
        512, "Posteriors and track changes waiting for fusion; when full the oldest is dropped and counted.",
        minimum=1,
    )


@dataclass(frozen=True)
class DetectorConfig(Section):
    """Which face detector runs, on what, with which thresholds."""

    implementation: str = setting(
        "opencv", "opencv: YuNet through OpenCV's FaceDetectorYN (CPU). runtime: the same YuNet graph on the "
        "inference backend of [models] (ONNX Runtime with its providers, or TensorRT with an engine), with YuNet's "
        "pre- and post-processing in numpy.", choices=("opencv", "runtime"),
    )
    model: Path | None = setting(
        None, "YuNet ONNX graph (runtime: with its JSON sidecar). Unset: the shipped "
        "edge/models/face_detection_yunet_2023mar.onnx.",
        example="/etc/emotion-edge/models/face_detection_yunet_2023mar.onnx", exists=True,
    )
    score_threshold: float = setting(0.7, "Least face score (0..1) for a detection to count.", minimum=0.0,
                                     maximum=1.0)
    nms_threshold: float = setting(
        0.3, "Non-maximum suppression: of two detections overlapping more than this (IoU), the weaker is dropped.",
        minimum=0.0, maximum=1.0,
    )
    top_k: int = setting(50, "Most candidate detections kept (best first) before non-maximum suppression.", minimum=1)
    max_side: int = setting(
        640, "Frames are shrunk so that their longer side is at most this many pixels before detection (cost grows "
        "with the pixel count; in 1280x720 frames, faces narrower than about 35 pixels start to be missed at 640, "
        "50 at 480: docs/performance.md).", minimum=32,
    )


@dataclass(frozen=True)
class ModelsConfig(Section):
    """Which models run and on which inference backend."""

    speech: Path | None = setting(
        None, "Speech model (ONNX with its JSON sidecar). Unset: the shipped edge/models/speech_cnn.onnx.",
        example="/etc/emotion-edge/models/speech_cnn.onnx", exists=True,
    )
    face: Path | None = setting(
        None, "Face model (ONNX with its JSON sidecar). Unset: the shipped edge/models/face_stn_cnn.onnx.",
        example="/etc/emotion-edge/models/face_stn_cnn.onnx", exists=True,
    )
    fusion: Path | None = setting(
        None, "Model-level fusion head (fusion_head.onnx of `emotion-export onnx --fusion`, with its JSON sidecar): "
        "speech and face embeddings in, 7 emotions out. When set, a track with a face and speech captured within "
        "pipeline.fusion_tolerance_s is fused by this head (events and state say fusion = \"model\"); when one "
        "modality is missing, decision-level fusion as when unset. The head must have been exported for the speech "
        "and face models in use (its sidecar records their checksums and embedding sizes): the daemon refuses to "
        "start otherwise, saying which differs. Runs on the backend below. Unset: a shipped "
        "edge/models/fusion_head.onnx when there is one and speech and face are unset too (it would be made for the "
        "shipped models; this release ships none: decision-level fusion); decision-level fusion with other models.",
        example="/etc/emotion-edge/models/fusion_head.onnx", exists=True,
    )
    gate: Path | None = setting(
        None, "Reliability gate for decision-level fusion (gate_weights.json or gate.json of `emotion-bench "
        "fusion-pairs`): each modality's weight learned as a function of its confidence on the input (gate.json: "
        "plus a class bias), fitted on out-of-fold posteriors; replaces pipeline.face_weight, speech_weight and "
        "weight_by_confidence when both modalities are present. Unset: the shipped edge/models/fusion_gate.json "
        "(fitted for the shipped models, no class bias) when speech and face are unset too; the fixed weights with "
        "other models.", example="/etc/emotion-edge/models/fusion_gate.json", exists=True,
    )
    gated_fusion: bool = setting(
        True, "Fuse with the reliability gate (models.gate, or the shipped one) when both modalities are present; "
        "false: the fixed weights pipeline.face_weight and pipeline.speech_weight."
    )
    model_fusion: bool = setting(
        True, "Fuse a track's face and speech with the fusion head (models.fusion, or a shipped one) when both are "
        "present; false: decision-level fusion only (pipeline.face_weight and pipeline.speech_weight)."
    )
    backend: str = setting(
        "auto", "Inference backend of every model (and of the detector with detector.implementation = \"runtime\"); "
        "auto picks TensorRT when an engine and a GPU are there, else ONNX Runtime.", choices=BACKENDS,
    )
    providers: tuple[str, ...] = setting(
        ("cpu",), "ONNX Runtime execution providers, in order of preference (cpu is always the last resort).",
        choices=tuple(PROVIDERS),
    )
    threads: int = setting(
        0, "Intra-op threads: ONNX Runtime's per model and, with the opencv detector, OpenCV's for the process "
        "(0: each library decides, about one per core).", minimum=0,
    )
    int8: bool = setting(
        False, "Run the INT8 twin of the speech and face models: <name>.int8-cpu.onnx on ONNX Runtime's CPU "
        "provider (U8S8, the form its CPU kernels run fast), <name>.int8.onnx (QDQ) on the TensorRT provider, an "
        "INT8 engine on the tensorrt backend (`emotion-export int8 --form cpu|tensorrt`).",
    )
    spinning: bool = setting(
        False, "ONNX Runtime's intra-op threads spin-wait for the next run instead of sleeping: a little less latency "
        "on a machine with idle cores, several times the CPU per inference when models run a few times a second.",
    )


@dataclass(frozen=True)
class SmoothingConfig(Section):
    """How per-track posteriors are smoothed over time before events are raised."""

    ema_alpha: float = setting(
        0.3, "Weight of the newest posterior in the exponential moving average (1: no smoothing).",
        minimum=0.01, maximum=1.0,
    )
    hysteresis: float = setting(
        0.1, "A new label must beat the current one's smoothed probability by this margin to be reported.",
        minimum=0.0, maximum=1.0,
    )
    hold: int = setting(
        2, "Consecutive updates on which a new label must lead by the hysteresis margin before it is reported.",
        minimum=1,
    )
    min_confidence: float = setting(
        0.0, "Smoothed (calibrated) probability the label needs before it is reported; below it (by the hysteresis "
        "margin once reached) events and state say 'uncertain' instead. 0: always name the label.",
        minimum=0.0, maximum=1.0,
    )


@dataclass(frozen=True)
class OutputConfig(Section):
    """Where events, state and stats go (MQTT, or JSON lines on stdout when no broker is set)."""

    mqtt_url: str | None = setting(
        None, "MQTT broker, mqtt://host[:port] (default port 1883) or mqtts://host[:port] (TLS, default 8883). "
        "Unset: every payload is printed as one JSON line on stdout.",
        example="mqtt://127.0.0.1:1883", pattern=MQTT_URL,
    )
    prefix: str = setting("emotion", "First level of every topic: <prefix>/<device>/events ...", pattern=TOPIC_LEVEL)
    device: str | None = setting(
        None, "Device id, the second topic level and the payloads' device field. Unset: the hostname.",
        example="kiosk-1", pattern=TOPIC_LEVEL,
    )
    username: str | None = setting(None, "MQTT user name.", example="emotion-edge")
    password: str | None = setting(None, "MQTT password (needs username).", example="secret")
    tls_ca: Path | None = setting(
        None, "mqtts://: CA certificate file that signed the broker's certificate. Unset: the system's CAs.",
        example="/etc/emotion-edge/ca.crt", exists=True,
    )
    tls_cert: Path | None = setting(
        None, "mqtts://: client certificate file (with tls_key) for brokers that require one.",
        example="/etc/emotion-edge/client.crt", exists=True,
    )
    tls_key: Path | None = setting(
        None, "mqtts://: private key of tls_cert.", example="/etc/emotion-edge/client.key", exists=True
    )
    tls_insecure: bool = setting(
        False, "mqtts://: do not check that the broker's certificate names its host (testing only)."
    )
    keepalive_s: int = setting(
        30, "MQTT keepalive in seconds; the broker declares the device offline after 1.5x this.", minimum=5
    )
    reconnect_min_s: float = setting(1.0, "First delay before reconnecting to a lost broker.", minimum=0.1)
    reconnect_max_s: float = setting(
        5.0, "Longest delay between reconnection attempts (doubling from the first): a broker that comes back is "
        "reached within about this long.", minimum=0.1
    )
    buffer_size: int = setting(
        1000, "Payloads held while the broker is unreachable, delivered in order when it returns; beyond this "
        "the oldest are dropped and counted in stats.", minimum=1,
    )
    close_timeout_s: float = setting(
        5.0, "On shutdown: how long to wait for held payloads to be delivered.", minimum=0.0
    )
    homeassistant: bool = setting(
        False, "MQTT: announce the device to Home Assistant (MQTT discovery, retained, under homeassistant_prefix) "
        "with an emotion sensor fed from every state message; false removes a sensor announced before."
    )
    homeassistant_prefix: str = setting(
        "homeassistant", "MQTT: Home Assistant's discovery prefix (its MQTT integration's setting).",
        pattern=TOPIC_LEVEL,
    )
    state_interval_s: float = setting(5.0, "Period of the retained state message.", minimum=0.1)
    stats_interval_s: float = setting(10.0, "Period of the health statistics message.", minimum=0.1)

    def __post_init__(self) -> None:
        super().__post_init__()
        port = re.fullmatch(r"mqtts?://[^\s/:@]+:(\d+)/?", self.mqtt_url or "")
        if port and not 1 <= int(port.group(1)) <= 65535:
            raise SettingError("mqtt_url", f"port {port.group(1)} is not in 1..65535")
        tls_set = [name for name in ("tls_ca", "tls_cert", "tls_key") if getattr(self, name) is not None]
        if tls_set and not (self.mqtt_url or "").startswith("mqtts://"):
            raise SettingError(tls_set[0], "is set but mqtt_url is not an mqtts:// URL")
        if self.tls_insecure and not (self.mqtt_url or "").startswith("mqtts://"):
            raise SettingError("tls_insecure", "is set but mqtt_url is not an mqtts:// URL")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise SettingError("tls_cert" if self.tls_cert is None else "tls_key", "tls_cert and tls_key go together")
        if self.password is not None and self.username is None:
            raise SettingError("password", "is set without username")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise SettingError("reconnect_max_s", "must be at least reconnect_min_s")


@dataclass(frozen=True)
class ServiceConfig(Section):
    """How the daemon behaves as a service."""

    log_level: str = setting("INFO", "Lowest level logged to stderr.", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    watchdog: bool = setting(
        True, "Under systemd with WatchdogSec set: ping the watchdog (WATCHDOG=1) while the pipeline is healthy "
        "and no source is stalled."
    )
    stall_s: float = setting(
        15.0, "A running source that delivers nothing (no frame, no audio block) for this long is stalled: it is "
        "logged and reported in the service status, and the watchdog pings stop until it delivers again (under "
        "systemd, WatchdogSec later the service is restarted). 0: no stall detection.", minimum=0.0,
    )


@dataclass(frozen=True)
class Config:
    """The whole configuration: one table per area."""

    source: SourceConfig = dataclasses.field(default_factory=SourceConfig)
    pipeline: PipelineConfig = dataclasses.field(default_factory=PipelineConfig)
    detector: DetectorConfig = dataclasses.field(default_factory=DetectorConfig)
    models: ModelsConfig = dataclasses.field(default_factory=ModelsConfig)
    smoothing: SmoothingConfig = dataclasses.field(default_factory=SmoothingConfig)
    output: OutputConfig = dataclasses.field(default_factory=OutputConfig)
    service: ServiceConfig = dataclasses.field(default_factory=ServiceConfig)


# What the installed service runs with, beyond the defaults: the camera, the default microphone and
# the local broker. systemd/config.example.toml is rendered from Config() with these applied.
EXAMPLE_OVERRIDES: Mapping[str, object] = {
    "source.video": "v4l2:///dev/video0",
    "source.audio": "default",
    "output.mqtt_url": "mqtt://127.0.0.1:1883",
}

SECTIONS: dict[str, type] = {f.name: f.default_factory for f in dataclasses.fields(Config)}  # type: ignore[misc]
"""Section name -> its dataclass, in the order of ``Config``."""
