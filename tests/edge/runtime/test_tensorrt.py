"""TensorRT engines: build plan, file keys, the loader's refusals, and (with TensorRT and a GPU) real engines.

The build decisions, engine names, sidecar checks and backend selection run everywhere. The
tests that build and run engines need TensorRT's Python bindings and a CUDA GPU (a Jetson with
JetPack); they skip with that reason elsewhere. docs/EXPORT.md has the commands to run them on
a Jetson.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import REPO_ROOT
from onnx import TensorProto, helper, numpy_helper

from calibration.builder import CalibrationSet
from edge.config.schema import ModelsConfig
from edge.errors import InputError, ModelFileError
from edge.runtime.cuda_memory import GpuInfo
from edge.runtime.onnxruntime_backend import OnnxRuntimeBackend
from edge.runtime.select import load_backend, ort_providers
from edge.runtime.tensorrt_backend import TensorRTBackend, check_engine_target, engine_filename
from edge.sidecar import ModelSidecar, SidecarError, SidecarMismatchError, file_sha256, read_sidecar, write_sidecar
from export.quantize import QuantizeSettings, quantize_qdq
from export.tensorrt_engine import (
    BuildPlan,
    Capabilities,
    EngineSettings,
    build_engine,
    fast_precisions,
    plan_build,
    trtexec_command,
)

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
needs_tensorrt = pytest.mark.skipif(
    not HAS_TENSORRT,
    reason="TensorRT is not installed (JetPack's python3-libnvinfer, with a CUDA GPU): run these on a Jetson, "
           "see docs/EXPORT.md 'Validating on a Jetson'",
)
NANO = Capabilities(fast_fp16=True, fast_int8=False)
ORIN = Capabilities(fast_fp16=True, fast_int8=True)
ORIN_GPU = GpuInfo(name="Orin", compute_capability="8.7")
WEIGHTS = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)


def _gemm_model(path: Path) -> Path:
    """A real ONNX graph with a dynamic batch: logits = x W^T + b (Gemm), embedding = x."""
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["features", "W", "b"], ["logits"], transB=1),
         helper.make_node("Identity", ["features"], ["embedding"])],
        "gemm",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 4])],
        initializer=[numpy_helper.from_array(WEIGHTS, "W"), numpy_helper.from_array(np.zeros(3, np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    write_sidecar(path, ModelSidecar(name=path.stem, kind="speech", labels=("neutral", "happy", "sad"),
                                     input_name="features", input_shape=(None, 4), outputs=("logits", "embedding"),
                                     sha256=file_sha256(path), features={"mfcc": {"numcep": 4}}))
    return path


def _calibration(count: int = 48) -> CalibrationSet:
    inputs = np.random.default_rng(1).normal(size=(count, 4)).astype(np.float32)
    return CalibrationSet(kind="speech", inputs=inputs, labels=np.arange(count) % 3,
                          sample_ids=tuple(f"s{i}" for i in range(count)), label_names=("neutral", "happy", "sad"),
                          seed=1, per_class=count // 3)


@pytest.fixture()
def fp32(tmp_path: Path) -> Path:
    return _gemm_model(tmp_path / "tiny.onnx")


@pytest.fixture()
def with_int8(fp32: Path) -> Path:
    quantize_qdq(fp32, _calibration(), settings=QuantizeSettings(float_input_layers=False))  # its one layer reads x
    return fp32


def _engine_file(model: Path, gpu: GpuInfo = ORIN_GPU, version: str = "8.5.2.2") -> Path:
    """An engine-named file with an engine sidecar (its bytes are not an engine: only the checks read it)."""
    source = read_sidecar(model)
    path = model.parent / engine_filename(source.name, "fp16", version, gpu, source.sha256)
    path.write_bytes(b"serialized engine bytes")
    write_sidecar(path, replace(source, sha256=file_sha256(path), precision="fp16", source={
        "builder": "tensorrt", "tensorrt": version, "gpu": gpu.name, "compute_capability": gpu.compute_capability,
        "onnx": model.name, "onnx_sha256": source.sha256}))
    return path


def test_engine_files_are_keyed_by_precision_version_gpu_and_source() -> None:
    name = engine_filename("face_stn_cnn", "int8", "10.3.0.30", ORIN_GPU, "0123456789abcdef" * 4)
    assert name == "face_stn_cnn.int8.trt10.3.0.30.sm87.0123456789ab.engine"
    assert engine_filename("face_stn_cnn", "fp16", "8.2.1.8", GpuInfo("NVIDIA Tegra X1", "5.3"), "f" * 64) \
        == "face_stn_cnn.fp16.trt8.2.1.8.sm53.ffffffffffff.engine"


def test_fast_precisions_follow_the_jetson_gpus() -> None:
    assert fast_precisions("5.3") == NANO  # Nano (Maxwell): FP16, no INT8
    assert fast_precisions("6.2") == NANO  # TX2 (Pascal)
    assert fast_precisions("7.2") == ORIN  # Xavier (Volta)
    assert fast_precisions("8.7") == ORIN  # Orin (Ampere)
    assert fast_precisions("6.1") == Capabilities(fast_fp16=False, fast_int8=True)


def test_auto_precision_is_fp16_on_a_nano_and_int8_where_int8_is_fast(with_int8: Path) -> None:
    qdq = with_int8.with_name("tiny.int8.onnx")
    assert plan_build(with_int8, "auto", NANO, calibration=False) == BuildPlan(
        with_int8, read_sidecar(with_int8), "fp16", "none")
    plan = plan_build(with_int8, "auto", ORIN, calibration=False)
    assert (plan.source, plan.precision, plan.quantization) == (qdq, "int8", "explicit")
    assert plan_build(with_int8, "auto", Capabilities(False, False), calibration=False).precision == "fp32"
    assert plan_build(with_int8, "int8", ORIN, calibration=True).quantization == "implicit"
    assert plan_build(qdq, "auto", ORIN, calibration=False).source == qdq


def test_impossible_builds_say_why(with_int8: Path) -> None:
    qdq = with_int8.with_name("tiny.int8.onnx")
    with pytest.raises(InputError, match="no fast INT8 .*Jetson Nano"):
        plan_build(with_int8, "int8", NANO, calibration=False)
    with pytest.raises(InputError, match="no fast INT8"):
        plan_build(qdq, "auto", NANO, calibration=False)
    with pytest.raises(InputError, match="builds INT8 engines only"):
        plan_build(qdq, "fp16", ORIN, calibration=False)
    with pytest.raises(InputError, match="1 <= min <= opt <= max"):
        EngineSettings(min_batch=4, opt_batch=2)
    with pytest.raises(InputError, match="precision 'int4'"):
        EngineSettings(precision="int4")


def test_int8_without_a_qdq_model_or_a_calibration_set_is_refused(tmp_path: Path) -> None:
    model = _gemm_model(tmp_path / "alone.onnx")
    with pytest.raises(InputError, match="INT8 needs the QDQ model alone.int8.onnx beside it"):
        plan_build(model, "int8", ORIN, calibration=False)


def test_the_trtexec_equivalent_names_the_same_build(with_int8: Path) -> None:
    plan = plan_build(with_int8, "auto", ORIN, calibration=False)
    line = trtexec_command(plan, EngineSettings(max_batch=16), "tiny.engine")
    assert line.startswith(f"trtexec --onnx={with_int8.with_name('tiny.int8.onnx')} --int8 --fp16 ")
    assert "--minShapes=features:1x4 --optShapes=features:8x4 --maxShapes=features:16x4" in line
    assert line.endswith("--memPoolSize=workspace:256 --saveEngine=tiny.engine")
    implicit = trtexec_command(plan_build(with_int8, "int8", ORIN, calibration=True), EngineSettings(), "x")
    assert "--calib=" in implicit and f"--onnx={with_int8} " in implicit


def test_an_engine_for_another_tensorrt_or_gpu_or_an_older_model_is_refused(fp32: Path) -> None:
    engine = _engine_file(fp32)
    sidecar = read_sidecar(engine)
    check_engine_target(sidecar, engine, "8.5.2.2", ORIN_GPU)
    rebuild = f"emotion-export engine {fp32} --precision fp16 --out {fp32.parent}"
    with pytest.raises(SidecarMismatchError, match=r"TensorRT version: built for '8.5.2.2', this device has '8.6.2'"):
        check_engine_target(sidecar, engine, "8.6.2", ORIN_GPU)
    with pytest.raises(SidecarMismatchError) as refused:
        check_engine_target(sidecar, engine, "8.5.2.2", GpuInfo("NVIDIA Tegra X1", "5.3"))
    assert "GPU: built for 'Orin', this device has 'NVIDIA Tegra X1'" in str(refused.value)
    assert "compute capability: built for '8.7', this device has '5.3'" in str(refused.value)
    assert rebuild in str(refused.value)
    reexported = onnx.load(str(fp32))
    reexported.doc_string = "exported again"
    onnx.save(reexported, str(fp32))  # same name, other bytes: the engine is stale
    with pytest.raises(SidecarMismatchError, match="source model tiny.onnx has changed since the engine was built"):
        check_engine_target(sidecar, engine, "8.5.2.2", ORIN_GPU)
    with pytest.raises(SidecarError, match="not a TensorRT engine sidecar"):
        other = _gemm_model(fp32.with_name("other.onnx"))
        check_engine_target(read_sidecar(other), other, "8.5.2.2", ORIN_GPU)


def test_a_truncated_engine_or_a_missing_one_is_refused_before_tensorrt_loads(fp32: Path, tmp_path: Path) -> None:
    engine = _engine_file(fp32)
    engine.write_bytes(engine.read_bytes()[:5])
    with pytest.raises(SidecarError, match="does not match its sidecar"):
        TensorRTBackend(engine)
    with pytest.raises(SidecarError, match="does not match its sidecar"):
        load_backend(engine)
    with pytest.raises(ModelFileError, match="engine file not found"):
        TensorRTBackend(tmp_path / "absent.engine")


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here")
def test_without_tensorrt_the_engine_backend_says_how_to_get_it(fp32: Path) -> None:
    with pytest.raises(ModelFileError, match="TensorRT's Python bindings are not installed.*python3-libnvinfer"):
        TensorRTBackend(_engine_file(fp32))


def test_backend_selection_by_file_and_config(with_int8: Path) -> None:
    assert isinstance(load_backend(with_int8), OnnxRuntimeBackend)
    assert isinstance(load_backend(with_int8, ModelsConfig(backend="onnxruntime", threads=1)), OnnxRuntimeBackend)
    with pytest.raises(ModelFileError, match="a TensorRT engine cannot run on ONNX Runtime"):
        load_backend(_engine_file(with_int8), ModelsConfig(backend="onnxruntime"))
    with pytest.raises(ValueError, match="backend: must be one of 'auto', 'onnxruntime', 'tensorrt', got 'tflite'"):
        ModelsConfig(backend="tflite")
    with pytest.raises(ValueError, match="providers: must be one of 'tensorrt', 'cuda', 'cpu', got 'npu'"):
        ModelsConfig(providers=("npu",))
    trt, cuda, cpu = ort_providers(with_int8.with_name("tiny.int8.onnx"), ("tensorrt", "cuda"))
    assert trt[0] == "TensorrtExecutionProvider" and trt[1]["trt_int8_enable"] is True
    assert trt[1]["trt_engine_cache_enable"] is True and trt[1]["trt_engine_cache_path"].endswith("ort_trt_cache")
    assert (cuda, cpu) == ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert ort_providers(with_int8, ("tensorrt",))[0][1]["trt_int8_enable"] is False


def test_the_engine_command_needs_no_torch_onnx_or_matplotlib() -> None:
    probe = textwrap.dedent("""
        import importlib.abc, sys
        class Blocker(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "onnx", "onnxscript", "matplotlib", "sklearn", "tqdm"):
                    raise ImportError(f"{name} is not on the device")
        sys.meta_path.insert(0, Blocker())
        from export.cli.main import main
        sys.exit(main(["engine", "--help"]))
    """)
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "--precision {auto,fp32,fp16,int8}" in result.stdout


@needs_tensorrt
def test_fp16_and_int8_engines_run_like_onnxruntime(with_int8: Path) -> None:
    batch = _calibration(20).inputs
    expected = OnnxRuntimeBackend(with_int8).run(batch)["logits"]
    for precision in ("fp16", "int8"):
        engine = build_engine(with_int8, settings=EngineSettings(precision=precision, opt_batch=4, max_batch=8))
        sidecar = read_sidecar(engine)
        assert sidecar.precision == precision and sidecar.source["onnx_sha256"] == file_sha256(
            with_int8 if precision == "fp16" else with_int8.with_name("tiny.int8.onnx"))
        backend = TensorRTBackend(engine)
        logits = backend.run(batch)["logits"]  # 20 > max batch 8: run in three parts
        assert logits.shape == expected.shape
        assert np.abs(logits - expected).max() < 0.05 * np.abs(expected).max()
        assert load_backend(with_int8, ModelsConfig(backend="tensorrt"), precision=precision).artifact == engine
        with pytest.raises(InputError, match="input of shape"):
            backend.run(np.zeros((2, 5), np.float32))
        backend.close()


@needs_tensorrt
def test_implicit_int8_writes_and_reuses_its_calibration_cache(fp32: Path, tmp_path: Path) -> None:
    _calibration().save(tmp_path / "set")
    settings = EngineSettings(precision="int8", calibration=tmp_path / "set", calibration_batch=8)
    engine = build_engine(fp32, settings=settings)
    cache = engine.with_name(engine.name.removesuffix(".engine") + ".calib")
    assert cache.is_file() and read_sidecar(engine).source["quantization"] == "implicit"
    written = cache.read_bytes()
    build_engine(fp32, settings=settings)
    assert cache.read_bytes() == written


@needs_tensorrt
def test_a_corrupt_engine_or_a_sidecar_that_disagrees_is_refused(fp32: Path) -> None:
    engine = build_engine(fp32, settings=EngineSettings(precision="fp32", opt_batch=2, max_batch=4))
    sidecar = read_sidecar(engine)
    engine.write_bytes(engine.read_bytes()[: engine.stat().st_size // 2])
    write_sidecar(engine, replace(sidecar, sha256=file_sha256(engine)))
    with pytest.raises(ModelFileError, match="cannot deserialize this engine"):
        TensorRTBackend(engine)
    engine = build_engine(fp32, settings=EngineSettings(precision="fp32", opt_batch=2, max_batch=4))
    write_sidecar(engine, replace(read_sidecar(engine), input_name="mfcc"))
    with pytest.raises(SidecarMismatchError, match=r"the engine has inputs \['features'\]"):
        TensorRTBackend(engine)
