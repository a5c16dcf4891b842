"""``emotion-export onnx --fusion``: the fusion head as ONNX tied to its encoder ONNX models, parity with torch on
real embeddings, the refusals at export and at load time, and FP32/FP16 only for TensorRT.

Everything is built here from committed files: tiny torch encoders (tests/tiny_encoders.py) exported to ONNX
with the real command, real MFCC windows of the bundled FLAC take and real faces aligned from the bundled clip.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import pytest
import torch
from tiny_encoders import face_encoder, speech_encoder

from calibration.builder import CalibrationSet
from edge.errors import InputError, ModelFileError
from edge.features.alignment import AlignParams, align_face
from edge.features.video import iter_video_frames
from edge.fusion.decision import softmax
from edge.fusion.head import FusionHeadModel
from edge.models.loading import create_detector
from edge.runtime.onnxruntime_backend import OnnxRuntimeBackend
from edge.sidecar import SidecarError, SidecarMismatchError, file_sha256, read_sidecar, write_sidecar
from edge.taxonomy import EMOTIONS
from export.cli.main import main as export_main
from export.quantize import quantize_qdq
from export.tensorrt_engine import Capabilities, plan_build
from train.data.feature_cache import SpeechCacheSpec, build_cache, load_speech_cache
from train.data.ravdess import index_ravdess
from train.fusion.data import encode, load_face_encoder, load_speech_encoder
from train.fusion.training import TrainedHead, load_fusion_head, save_fusion_head
from train.networks.fusion_head import FusionHead
from train.trainer import FitResult

ORIN = Capabilities(fast_fp16=True, fast_int8=True)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory, speech_flac: Path, av_clip: Path) -> dict[str, Any]:
    """A speech cache of the bundled FLAC take and a FER-layout folder of faces aligned from the bundled clip."""
    root = tmp_path_factory.mktemp("real")
    actor = root / "ravdess" / "Actor_01"
    actor.mkdir(parents=True)
    shutil.copy(speech_flac, actor / speech_flac.name)
    cache = build_cache(index_ravdess(root / "ravdess").takes, SpeechCacheSpec(), root / "cache", root / "ravdess",
                        workers=1, progress=False).directory
    faces = root / "faces" / "happy"
    faces.mkdir(parents=True)
    detector = create_detector()
    for index, frame in enumerate(iter_video_frames(av_clip, every_nth=4)):
        found = detector.detect(frame.image)
        if found:
            cv2.imwrite(str(faces / f"{index:03d}.png"), align_face(frame.image, found[0].landmarks, AlignParams()))
    windows = len(load_speech_cache(cache).windows)
    assert 1 <= windows < len(list(faces.iterdir()))
    return {"cache": cache, "faces": root / "faces", "face_count": len(list(faces.iterdir()))}


def _export(*args: str | Path) -> list[dict[str, Any]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert export_main(["onnx", *map(str, args)]) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.fixture(scope="module")
def exported(real: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Tiny encoders exported by `emotion-export onnx`, an untrained head saved by the real code (standardised
    on embeddings near the encoders' ones), and the head exported against the encoders' ONNX models."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("fusion")
    speech = speech_encoder(root / "speech" / "speech_cnn.pt", [1], [2])
    face = face_encoder(root / "face" / "face_cnn.pt", real["faces"], fit_images=20, validation_images=4)
    models = root / "models"
    _export("--speech", speech, "--speech-cache", real["cache"], "--face", face, "--fer-test", real["faces"],
            "--out", models)
    encoders = {"speech": load_speech_encoder(speech), "face": load_face_encoder(face)}
    windows = torch.from_numpy(load_speech_cache(real["cache"]).windows)
    pairs = torch.cat([encode(encoders["speech"], windows[:1].repeat(4, 1, 1, 1))[0],
                       encode(encoders["face"], torch.rand(4, 1, 48, 48) * 255)[0]], dim=1)
    head = FusionHead(16, 32)
    head.fit_standardisation(pairs + torch.randn_like(pairs))
    head.eval()
    fit = FitResult(best_state={}, best_epoch=0, best_val_accuracy=0.0, history=[])
    head_path = save_fusion_head(root / "head", TrainedHead(head, fit, 0.0), encoders, {"pairs": "test"})
    metrics = root / "fusion_metrics.json"
    metrics.write_text(json.dumps({"window_accuracy": {"model": 0.5}}))
    [report] = _export("--fusion", head_path, "--speech-cache", real["cache"], "--fer-test", real["faces"],
                       "--fusion-metrics", metrics, "--out", models)
    return {"root": root, "models": models, "speech": speech, "face": face, "head": head_path, "report": report,
            **real}


def test_the_head_exports_with_parity_on_real_embeddings(exported: dict[str, Any]) -> None:
    report, models = exported["report"], exported["models"]
    onnx_path = models / "fusion_head.onnx"
    assert report["onnx"] == str(onnx_path) and report["sha256"] == file_sha256(onnx_path)
    assert report["count"] == exported["face_count"]       # every real face once, each with a real speech window
    assert report["max_abs_logit_diff"] < 1e-4 and report["argmax_agreement"] == 1.0
    for name, model in (("speech", "speech_cnn.onnx"), ("face", "face_stn_cnn.onnx")):
        encoder = report["encoders"][name]
        assert encoder["onnx"] == model and encoder["sha256"] == file_sha256(models / model)
        assert encoder["max_abs_embedding_diff"] < 1e-3
    graph = onnx.load(str(onnx_path))
    assert [o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert {node.op_type for node in graph.graph.node} <= {"Sub", "Div", "Gemm", "MatMul", "Add", "Constant"}


def test_the_sidecar_ties_the_head_to_its_encoders(exported: dict[str, Any]) -> None:
    models = exported["models"]
    sidecar = read_sidecar(models / "fusion_head.onnx")
    assert (sidecar.kind, sidecar.input_name, sidecar.input_shape, sidecar.outputs) == (
        "fusion", "embeddings", (None, 48), ("logits",))
    assert sidecar.labels == EMOTIONS and sidecar.precision == "fp32" and sidecar.source["opset"] == 17
    assert sidecar.features["encoders"] == {
        "speech": {"model": "speech_cnn.onnx", "sha256": file_sha256(models / "speech_cnn.onnx"), "embedding_size": 16},
        "face": {"model": "face_stn_cnn.onnx", "sha256": file_sha256(models / "face_stn_cnn.onnx"),
                 "embedding_size": 32},
    }
    assert sidecar.metrics == {"window_accuracy": {"model": 0.5}}
    assert sidecar.training["checkpoint"]["sha256"] == file_sha256(exported["head"])
    assert sidecar.training["encoders"]["speech"]["sha256"] == file_sha256(exported["speech"])
    assert sidecar.training["weight_layers"] == 1


def test_the_loaded_head_gives_the_torch_heads_posterior(exported: dict[str, Any]) -> None:
    head = _load(exported["models"])
    speech, face = head.encoders["speech"], head.encoders["face"]
    windows = load_speech_cache(exported["cache"]).windows[:2]
    crops = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(exported["faces"].rglob("*.png"))[:3]]
    speech_embedding = speech.run(windows)["embedding"]
    face_embedding = face.run(np.stack(crops)[:, None].astype(np.float32))["embedding"]
    torch_head, _ = load_fusion_head(exported["head"])
    with torch.no_grad():
        single = torch_head.fuse(torch.from_numpy(speech_embedding[:1]), torch.from_numpy(face_embedding[:1]))
        every_pair = torch_head(torch.from_numpy(np.concatenate(
            [np.repeat(speech_embedding, 3, axis=0), np.tile(face_embedding, (2, 1))], axis=1)))
    np.testing.assert_allclose(head.posterior(speech_embedding[0], face_embedding[0]), softmax(single.numpy())[0],
                               atol=1e-5)
    np.testing.assert_allclose(head.posterior(speech_embedding, face_embedding),
                               softmax(every_pair.numpy()).mean(axis=0), atol=1e-5)


def test_export_refuses_encoders_the_head_was_not_trained_with(exported: dict[str, Any],
                                                               caplog: pytest.LogCaptureFixture) -> None:
    root = exported["root"]
    other = speech_encoder(root / "other" / "speech_cnn.pt", [1], [2], seed=1)
    _export("--speech", other, "--speech-cache", exported["cache"], "--out", root / "other_models")
    common = ["onnx", "--fusion", str(exported["head"]), "--speech-cache", str(exported["cache"]),
              "--fer-test", str(exported["faces"]), "--out", str(root / "refused")]
    face_onnx = ["--face-onnx", str(exported["models"] / "face_stn_cnn.onnx")]
    assert export_main([*common, "--speech-onnx", str(root / "other_models" / "speech_cnn.onnx"), *face_onnx]) == 2
    assert "not an export of" in caplog.text and "the speech model the fusion head was trained with" in caplog.text
    caplog.clear()
    assert export_main([*common, "--speech", str(other), *face_onnx,
                        "--speech-onnx", str(exported["models"] / "speech_cnn.onnx")]) == 2
    assert "is not the one the fusion head was trained with" in caplog.text
    caplog.clear()
    assert not (root / "refused" / "fusion_head.onnx").exists()   # (--speech itself was exported to --out)
    assert export_main(common) == 2                                 # no face ONNX model in --out
    assert "no face ONNX model; export it first (--face) or give --face-onnx" in caplog.text


def _copy_models(exported: dict[str, Any], to: Path) -> Path:
    shutil.copytree(exported["models"], to)
    return to


def _load(models: Path, speech: str = "speech_cnn.onnx") -> FusionHeadModel:
    return FusionHeadModel(OnnxRuntimeBackend(models / "fusion_head.onnx"), speech=OnnxRuntimeBackend(models / speech),
                           face=OnnxRuntimeBackend(models / "face_stn_cnn.onnx"))


def _derived(models: Path, source: Path, name: str, claims: str) -> str:
    """A copy of ``source`` (other bytes) whose sidecar says it was quantized from the model of sha256 ``claims``."""
    graph = onnx.load(str(source))
    graph.doc_string = "an INT8 build"
    onnx.save(graph, str(models / name))
    write_sidecar(models / name, replace(read_sidecar(source), sha256=file_sha256(models / name), precision="int8",
                                         source={"fp32_sha256": claims}))
    return name


def test_loading_refuses_a_head_for_other_encoders_saying_which_and_how_to_reexport(
    exported: dict[str, Any], tmp_path: Path
) -> None:
    models = _copy_models(exported, tmp_path / "models")
    retrained = speech_encoder(tmp_path / "s" / "speech_cnn.pt", [1], [2], seed=2)
    _export("--speech", retrained, "--speech-cache", exported["cache"], "--out", tmp_path / "other")
    for suffix in (".onnx", ".json"):
        shutil.copy(tmp_path / "other" / f"speech_cnn{suffix}", models / f"retrained{suffix}")
    with pytest.raises(SidecarMismatchError) as refused:
        _load(models, speech="retrained.onnx")
    message = str(refused.value)
    assert "made for the speech model speech_cnn.onnx" in message and "retrained.onnx" in message
    assert f"emotion-export onnx --fusion {exported['head'].resolve()}" in message
    # an INT8 or engine build of the recorded encoder is accepted: its sidecar names the FP32 model it came from
    recorded = read_sidecar(models / "speech_cnn.onnx").sha256
    head = _load(models, speech=_derived(models, models / "speech_cnn.onnx", "speech_cnn.int8.onnx", recorded))
    assert head.sizes == {"speech": 16, "face": 32}


def test_loading_refuses_wrong_embedding_sizes(exported: dict[str, Any], tmp_path: Path) -> None:
    models = _copy_models(exported, tmp_path / "models")
    original = read_sidecar(models / "fusion_head.onnx")
    encoders = original.features["encoders"]
    wrong = {**encoders, "face": {**encoders["face"], "embedding_size": 31}}
    write_sidecar(models / "fusion_head.onnx", replace(original, features={**original.features, "encoders": wrong}))
    with pytest.raises(SidecarMismatchError, match=r"embedding sizes \(speech 16 \+ face 31\) make \[None, 47\]"):
        _load(models)
    write_sidecar(models / "fusion_head.onnx", original)
    # a model claiming to be built from the recorded speech model, but giving 32-d embeddings (the face model's)
    impostor = _derived(models, models / "face_stn_cnn.onnx", "impostor.onnx", encoders["speech"]["sha256"])
    with pytest.raises(SidecarMismatchError, match="takes 16-d speech embeddings, but the speech model .* gives 32-d"):
        _load(models, speech=impostor)


def test_loading_refuses_a_truncated_head_or_a_model_that_is_not_a_head(exported: dict[str, Any],
                                                                         tmp_path: Path) -> None:
    models = _copy_models(exported, tmp_path / "models")
    head = models / "fusion_head.onnx"
    head.write_bytes(head.read_bytes()[:200])
    with pytest.raises(SidecarError, match="does not match its sidecar"):
        _load(models)
    write_sidecar(head, replace(read_sidecar(exported["models"] / "fusion_head.onnx"), sha256=file_sha256(head)))
    with pytest.raises(ModelFileError, match="not a loadable ONNX model"):
        _load(models)
    speech = OnnxRuntimeBackend(models / "speech_cnn.onnx")
    with pytest.raises(SidecarError, match="not a fusion head"):
        FusionHeadModel(speech, speech=speech, face=OnnxRuntimeBackend(models / "face_stn_cnn.onnx"))


def test_the_head_stays_fp32_onnx_and_builds_fp16_or_fp32_engines(exported: dict[str, Any]) -> None:
    head = exported["models"] / "fusion_head.onnx"
    assert plan_build(head, "auto", ORIN, calibration=False).precision == "fp16"
    nano_without_fp16 = Capabilities(fast_fp16=False, fast_int8=False)
    assert plan_build(head, "auto", nano_without_fp16, calibration=False).precision == "fp32"
    assert plan_build(head, "fp32", ORIN, calibration=False).quantization == "none"
    with pytest.raises(InputError, match="FP32 or FP16 only"):
        plan_build(head, "int8", ORIN, calibration=False)
    with pytest.raises(InputError, match="FP32 or FP16 only"):
        plan_build(head, "auto", ORIN, calibration=True)
    calibration = CalibrationSet(kind="fusion", inputs=np.zeros((4, 48), np.float32), labels=np.zeros(4, np.int64),
                                 sample_ids=("a", "b", "c", "d"), label_names=EMOTIONS, seed=0, per_class=1)
    with pytest.raises(InputError, match="stays FP32"):
        quantize_qdq(head, calibration)
