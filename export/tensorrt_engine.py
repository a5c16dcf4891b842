"""ONNX (FP32 or INT8 QDQ) -> serialized TensorRT engine with its sidecar, for TensorRT 8.0 to 10.x.

Run on the Jetson that will use the engine (engines are specific to one TensorRT version and GPU);
this module needs no torch. ``plan_build`` decides what to build from the model's sidecar, the
requested precision and what the GPU does fast (``Capabilities``, from the builder's
``platform_has_fast_fp16`` / ``platform_has_fast_int8``):

* ``auto``: INT8 where the GPU has fast INT8 (Xavier, Orin) and an INT8 QDQ model sits beside the
  FP32 one (explicit quantization), or a calibration set is given (implicit); else FP16 where it
  has fast FP16 (Nano: Maxwell has no INT8, FP16 is its fast path); else FP32;
* ``int8``: the QDQ model (given, or ``<name>.int8.onnx`` beside the FP32 one), or with
  ``--calibration`` the FP32 model through TensorRT 8.x's ``IInt8EntropyCalibrator2`` (the
  implicit path, deprecated in TensorRT 10); FP16 is enabled as well for the layers left in
  float (the spatial transformer);
* ``fp16`` / ``fp32``: the FP32 model.

The fusion head (sidecar kind ``fusion``) builds FP16 or FP32 only (``auto``: FP16 where fast);
INT8 is refused, as there is no QDQ model of it to build from.

``build_engine`` parses the model, sets one optimization profile for the dynamic batch
(min/opt/max) and a workspace limit, and writes ``engine_filename(...)`` (keyed by precision,
TensorRT version, compute capability and the source model's checksum) with a sidecar that adds
those facts, the GPU name and the equivalent ``trtexec`` command to the source model's sidecar.
The TensorRT API differences handled: explicit-batch network flag (required before 10, removed
in 10), ``max_workspace_size`` (before 8.4) vs ``set_memory_pool_limit``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from calibration.builder import load_calibration_set
from calibration.trt_calibrator import entropy_calibrator
from edge.errors import InputError, ModelFileError
from edge.fusion.head import FUSION_KIND
from edge.runtime.cuda_memory import GpuInfo, open_cuda
from edge.runtime.tensorrt_backend import engine_filename, import_tensorrt
from edge.sidecar import ModelSidecar, file_sha256, read_sidecar, write_sidecar

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "fp16", "int8")


@dataclass(frozen=True)
class EngineSettings:
    """What to build: precision, the dynamic-batch profile, the workspace and the implicit-INT8 set."""

    precision: str = "auto"
    min_batch: int = 1
    opt_batch: int = 8
    max_batch: int = 32
    workspace_mib: int = 256
    calibration: Path | None = None
    calibration_batch: int = 8
    cuda: str = "auto"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise InputError(f"precision {self.precision!r} is not one of {PRECISIONS}")
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise InputError(f"batch profile must satisfy 1 <= min <= opt <= max, got "
                             f"{self.min_batch}/{self.opt_batch}/{self.max_batch}")
        if self.workspace_mib < 1:
            raise InputError(f"workspace must be at least 1 MiB, got {self.workspace_mib}")


@dataclass(frozen=True)
class Capabilities:
    """What the GPU runs fast, as the TensorRT builder reports it."""

    fast_fp16: bool
    fast_int8: bool


@dataclass(frozen=True)
class BuildPlan:
    """The model to parse, the engine precision and how INT8 scales are obtained."""

    source: Path
    sidecar: ModelSidecar
    precision: str
    quantization: str  # "explicit" (Q/DQ in the model), "implicit" (calibrator) or "none"


def int8_sibling(model: Path) -> Path:
    """``face_stn_cnn.onnx`` -> ``face_stn_cnn.int8.onnx`` (the QDQ model shipped beside it)."""
    return model.with_name(model.name.removesuffix(".onnx") + ".int8.onnx")


def plan_build(model: Path, precision: str, capabilities: Capabilities, calibration: bool) -> BuildPlan:
    """Decide the source model and precision (see the module docstring); InputError when impossible."""
    sidecar = read_sidecar(model)
    if sidecar.kind == FUSION_KIND and (precision == "int8" or calibration):
        raise InputError(f"{model}: the fusion head is built FP32 or FP16 only: it is one fc layer over two "
                         "embeddings, INT8 would save nothing (docs/EXPORT.md); use --precision auto, fp16 or fp32")
    no_int8 = ("this GPU has no fast INT8 (TensorRT reports platform_has_fast_int8 = False, e.g. a Jetson Nano); "
               "build FP16 from the FP32 model")
    if sidecar.precision == "int8":
        if precision in ("fp16", "fp32"):
            raise InputError(f"{model}: an INT8 QDQ model builds INT8 engines only; "
                             f"give the FP32 model for {precision}")
        if not capabilities.fast_int8:
            raise InputError(f"{model}: {no_int8}")
        return BuildPlan(model, sidecar, "int8", "explicit")
    if sidecar.precision != "fp32":
        raise InputError(f"{model}: sidecar precision {sidecar.precision!r}; give an fp32 or int8 ONNX model")
    sibling = int8_sibling(model)
    if precision == "auto":
        if capabilities.fast_int8 and (calibration or sibling.is_file()):
            precision = "int8"
        else:
            precision = "fp16" if capabilities.fast_fp16 else "fp32"
    if precision != "int8":
        if precision == "fp16" and not capabilities.fast_fp16:
            log.warning("%s: this GPU has no fast FP16; TensorRT may run FP32 kernels", model)
        return BuildPlan(model, sidecar, precision, "none")
    if not capabilities.fast_int8:
        raise InputError(f"{model}: {no_int8}")
    if calibration:
        return BuildPlan(model, sidecar, "int8", "implicit")
    if sibling.is_file():
        return BuildPlan(sibling, read_sidecar(sibling), "int8", "explicit")
    raise InputError(f"{model}: INT8 needs the QDQ model {sibling.name} beside it (`emotion-export int8`) "
                     "or a calibration set (--calibration) for TensorRT's calibrator")


def fast_precisions(compute_capability: str) -> Capabilities:
    """What a GPU of this compute capability runs fast: FP16 on 5.3 (Nano), 6.0, 6.2 (TX2) and 7.0+;
    INT8 (DP4A / tensor cores) on 6.1 and 7.0+ (Xavier 7.2, Orin 8.7)."""
    major, minor = (int(part) for part in compute_capability.split("."))
    return Capabilities(fast_fp16=(major, minor) in ((5, 3), (6, 0), (6, 2)) or major >= 7,
                        fast_int8=(major, minor) == (6, 1) or major >= 7)


def capabilities(builder: Any, gpu: GpuInfo) -> Capabilities:
    """The builder's ``platform_has_fast_fp16/int8``; ``fast_precisions`` where a TensorRT lacks them."""
    table = fast_precisions(gpu.compute_capability)
    fp16 = getattr(builder, "platform_has_fast_fp16", None)
    int8 = getattr(builder, "platform_has_fast_int8", None)
    return Capabilities(fast_fp16=table.fast_fp16 if fp16 is None else bool(fp16),
                        fast_int8=table.fast_int8 if int8 is None else bool(int8))


def trtexec_command(plan: BuildPlan, settings: EngineSettings, engine: str) -> str:
    """The ``trtexec`` line (TensorRT 8.4+ flags) that builds the same engine, for checking on a device."""
    name = plan.sidecar.input_name
    sample = "x".join(str(d) for d in plan.sidecar.input_shape[1:])
    flags = {"fp32": [], "fp16": ["--fp16"], "int8": ["--int8", "--fp16"]}[plan.precision]
    if plan.quantization == "implicit":
        flags.append("--calib=<calibration cache written by emotion-export engine>")
    shapes = [f"--{which}Shapes={name}:{batch}x{sample}" for which, batch in
              (("min", settings.min_batch), ("opt", settings.opt_batch), ("max", settings.max_batch))]
    return " ".join(["trtexec", f"--onnx={plan.source}", *flags, *shapes,
                     f"--memPoolSize=workspace:{settings.workspace_mib}", f"--saveEngine={engine}"])


def _version(trt: Any) -> tuple[int, int]:
    major, minor = trt.__version__.split(".")[:2]
    return int(major), int(minor)


def _parse(trt: Any, builder: Any, logger: Any, plan: BuildPlan) -> tuple[Any, Any]:
    explicit_batch = 0 if _version(trt) >= (10, 0) else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(explicit_batch)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(plan.source.read_bytes()):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        hint = ""
        if any("GridSample" in error for error in errors):
            hint = (" The face model's spatial transformer uses ONNX GridSample, which TensorRT parses from "
                    "8.5 (JetPack 5 and later); for TensorRT 8.0/8.2 export the model with "
                    "`emotion-export onnx --opset 13`, which writes the sampling out in opset-13 operators.")
        raise ModelFileError(f"{plan.source}: TensorRT {trt.__version__} cannot parse this model: {errors}.{hint}")
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    expected = [-1, *plan.sidecar.input_shape[1:]]
    if [i.name for i in inputs] != [plan.sidecar.input_name] or list(inputs[0].shape) != expected:
        raise ModelFileError(f"{plan.source}: the network takes {[(i.name, list(i.shape)) for i in inputs]}, its "
                             f"sidecar says {plan.sidecar.input_name} {expected}")
    return network, parser


def _config(trt: Any, builder: Any, plan: BuildPlan, settings: EngineSettings, caps: Capabilities) -> Any:
    config = builder.create_builder_config()
    if hasattr(config, "set_memory_pool_limit"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mib << 20)
    else:
        config.max_workspace_size = settings.workspace_mib << 20
    if plan.precision == "fp16" or (plan.precision == "int8" and caps.fast_fp16):
        config.set_flag(trt.BuilderFlag.FP16)
    if plan.precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
    sample = tuple(plan.sidecar.input_shape[1:])
    profile = builder.create_optimization_profile()
    profile.set_shape(plan.sidecar.input_name, (settings.min_batch, *sample), (settings.opt_batch, *sample),
                      (settings.max_batch, *sample))
    config.add_optimization_profile(profile)
    return config


def _calibrate(trt: Any, builder: Any, config: Any, plan: BuildPlan, settings: EngineSettings, cuda: Any,
               directory: Path, cache: Path) -> dict[str, Any]:
    """Attach the entropy calibrator and its fixed-batch calibration profile; describe the set used."""
    calibration = load_calibration_set(directory)
    sample = tuple(plan.sidecar.input_shape[1:])
    if calibration.kind != plan.sidecar.kind or tuple(calibration.inputs.shape[1:]) != sample:
        raise InputError(f"{directory}: a {calibration.kind} set of {list(calibration.inputs.shape[1:])} "
                         f"cannot calibrate {plan.source} ({plan.sidecar.kind}, {list(plan.sidecar.input_shape[1:])})")
    if _version(trt) >= (10, 0):
        log.warning("TensorRT %s deprecates implicit INT8 calibration; prefer the QDQ model", trt.__version__)
    config.int8_calibrator = entropy_calibrator(calibration, cache, settings.calibration_batch, cuda)
    shape = (settings.calibration_batch, *plan.sidecar.input_shape[1:])
    profile = builder.create_optimization_profile()
    profile.set_shape(plan.sidecar.input_name, shape, shape, shape)
    config.set_calibration_profile(profile)
    return {"set": str(directory), "sha256": calibration.sha256(), "count": len(calibration.inputs),
            "batch": settings.calibration_batch, "cache": cache.name, "calibrator": "IInt8EntropyCalibrator2"}


def build_engine(model: str | Path, out_dir: str | Path | None = None, settings: EngineSettings | None = None) -> Path:
    """Build and write the engine for ``model`` on this device; return its path (sidecar beside it)."""
    settings = settings or EngineSettings()
    model = Path(model)
    if not model.is_file():
        raise ModelFileError(f"{model}: model file not found")
    out = Path(out_dir) if out_dir is not None else model.parent
    out.mkdir(parents=True, exist_ok=True)
    trt = import_tensorrt()
    cuda = open_cuda(settings.cuda)
    try:
        gpu = cuda.gpu()
        logger = trt.Logger(trt.Logger.WARNING)
        with cuda.active():
            builder = trt.Builder(logger)
            caps = capabilities(builder, gpu)
            plan = plan_build(model, settings.precision, caps, settings.calibration is not None)
            log.info("building a %s engine from %s (%s quantization) for %s, TensorRT %s", plan.precision,
                     plan.source.name, plan.quantization, gpu.name, trt.__version__)
            network, _parser = _parse(trt, builder, logger, plan)
            config = _config(trt, builder, plan, settings, caps)
            name = engine_filename(plan.sidecar.name, plan.precision, trt.__version__, gpu, plan.sidecar.sha256)
            calibration = None
            if plan.quantization == "implicit" and settings.calibration is not None:
                cache = out / (name.removesuffix(".engine") + ".calib")
                calibration = _calibrate(trt, builder, config, plan, settings, cuda, settings.calibration, cache)
            serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise ModelFileError(f"{plan.source}: TensorRT failed to build the engine (its log above says why)")
        path = out / name
        path.write_bytes(bytes(serialized))
    finally:
        cuda.close()
    sidecar = replace(plan.sidecar, sha256=file_sha256(path), precision=plan.precision, source={
        "builder": "tensorrt",
        "tensorrt": trt.__version__,
        "gpu": gpu.name,
        "compute_capability": gpu.compute_capability,
        "onnx": plan.source.name,
        "onnx_sha256": plan.sidecar.sha256,
        "onnx_precision": plan.sidecar.precision,
        "quantization": plan.quantization,
        "capabilities": asdict(caps),
        "profile": {"min": settings.min_batch, "opt": settings.opt_batch, "max": settings.max_batch},
        "workspace_mib": settings.workspace_mib,
        "calibration": calibration,
        "trtexec_equivalent": trtexec_command(plan, settings, name),
        "onnx_source": plan.sidecar.source,
    })
    write_sidecar(path, sidecar)
    return path




