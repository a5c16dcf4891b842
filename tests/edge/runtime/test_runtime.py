"""Sidecars and the ONNX Runtime backend: loading, input checks and the refusals that must be clear."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge.errors import InputError, ModelFileError
from edge.runtime.onnxruntime_backend import OnnxRuntimeBackend
from edge.sidecar import (
    ModelSidecar,
    SidecarError,
    SidecarMismatchError,
    check_features,
    file_sha256,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)

WEIGHTS = np.arange(12, dtype=np.float32).reshape(4, 3) / 10


def _tiny_model(path: Path, input_name: str = "features") -> Path:
    """A real ONNX graph: logits = x @ W, embedding = x, with a dynamic batch axis."""
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", [input_name, "W"], ["logits"]),
            helper.make_node("Identity", [input_name], ["embedding"]),
        ],
        "tiny",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", 4])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 4]),
        ],
        initializer=[numpy_helper.from_array(WEIGHTS, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _sidecar(path: Path, **changes: object) -> ModelSidecar:
    values: dict = {
        "name": "tiny",
        "kind": "speech",
        "labels": ("neutral", "happy", "sad"),
        "input_name": "features",
        "input_shape": (None, 4),
        "outputs": ("logits", "embedding"),
        "sha256": file_sha256(path),
        "features": {"mfcc": {"numcep": 40, "winlen": 0.025}},
    }
    values.update(changes)
    return ModelSidecar(**values)


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    path = _tiny_model(tmp_path / "tiny.onnx")
    write_sidecar(path, _sidecar(path))
    return path


def test_a_model_with_its_sidecar_runs_and_matches_numpy(model: Path) -> None:
    backend = OnnxRuntimeBackend(model)
    batch = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    outputs = backend.run(batch)
    np.testing.assert_allclose(outputs["logits"], batch @ WEIGHTS, rtol=1e-5)
    np.testing.assert_array_equal(outputs["embedding"], batch)
    assert backend.sidecar.labels == ("neutral", "happy", "sad")
    assert sidecar_path(model).name == "tiny.json"


def test_sidecar_round_trips_through_json(model: Path) -> None:
    assert read_sidecar(model) == _sidecar(model)


def test_wrong_input_shape_and_empty_batch_are_clear_errors(model: Path) -> None:
    backend = OnnxRuntimeBackend(model)
    with pytest.raises(InputError, match=r"input of shape \(2, 5\) given, the model takes Nx4"):
        backend.run(np.zeros((2, 5), np.float32))
    with pytest.raises(InputError, match="empty batch"):
        backend.run(np.zeros((0, 4), np.float32))


def test_missing_sidecar_is_refused(tmp_path: Path) -> None:
    path = _tiny_model(tmp_path / "bare.onnx")
    with pytest.raises(SidecarError, match="no sidecar bare.json"):
        OnnxRuntimeBackend(path)


def test_a_changed_model_file_is_refused_by_checksum(model: Path) -> None:
    data = model.read_bytes()
    model.write_bytes(data[: len(data) // 2])
    with pytest.raises(SidecarError, match="does not match its sidecar"):
        OnnxRuntimeBackend(model)


def test_a_corrupt_model_with_a_matching_sidecar_is_a_model_file_error(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(b"\x08\x07garbage" * 50)
    write_sidecar(path, _sidecar(path))
    with pytest.raises(ModelFileError, match="not a loadable ONNX model"):
        OnnxRuntimeBackend(path)


def test_a_sidecar_that_disagrees_with_the_graph_is_refused(tmp_path: Path) -> None:
    path = _tiny_model(tmp_path / "tiny.onnx")
    write_sidecar(path, _sidecar(path, input_shape=(None, 8)))
    with pytest.raises(
        SidecarMismatchError, match=r"graph takes input shape \[None, 4\], its sidecar says \[None, 8\]"
    ):
        OnnxRuntimeBackend(path)
    write_sidecar(path, _sidecar(path, input_name="mfcc"))
    with pytest.raises(SidecarMismatchError, match="its sidecar says"):
        OnnxRuntimeBackend(path)


def test_malformed_sidecars_are_refused(model: Path) -> None:
    sidecar = sidecar_path(model)
    sidecar.write_text("{not json")
    with pytest.raises(SidecarError, match="not valid JSON"):
        read_sidecar(model)
    data = _sidecar(model).to_dict()
    data["colour"] = "blue"
    del data["labels"]
    sidecar.write_text(json.dumps(data))
    with pytest.raises(SidecarError, match=r"unknown keys \['colour'\], missing keys \['labels'\]"):
        read_sidecar(model)


def test_feature_parameters_that_differ_are_named(model: Path) -> None:
    sidecar = read_sidecar(model)
    check_features(sidecar, {"mfcc": {"numcep": 40, "winlen": 0.025}}, model)
    with pytest.raises(SidecarMismatchError, match=r"mfcc.numcep: the model expects 40, the pipeline feeds 13"):
        check_features(sidecar, {"mfcc": {"numcep": 13, "winlen": 0.025}}, model)


def test_a_missing_model_file_and_an_unknown_provider_are_clear(model: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="model file not found"):
        OnnxRuntimeBackend(tmp_path / "absent.onnx")
    with pytest.raises(ModelFileError, match="NoSuchExecutionProvider.*not available"):
        OnnxRuntimeBackend(model, providers=("NoSuchExecutionProvider",))


def test_intra_op_threads_sleep_between_runs_unless_spinning_is_asked_for(model: Path) -> None:
    from edge.config.schema import ModelsConfig
    from edge.runtime.select import load_backend

    def spinning(backend: OnnxRuntimeBackend) -> tuple[str, str]:
        options = backend.session.get_session_options()
        return (options.get_session_config_entry("session.intra_op.allow_spinning"),
                options.get_session_config_entry("session.inter_op.allow_spinning"))

    assert spinning(OnnxRuntimeBackend(model)) == ("0", "0")
    for setting, expected in ((False, ("0", "0")), (True, ("1", "1"))):
        backend = load_backend(model, ModelsConfig(spinning=setting))
        assert isinstance(backend, OnnxRuntimeBackend) and spinning(backend) == expected


def test_models_int8_loads_the_twin_for_the_backend_or_says_how_to_make_it(model: Path) -> None:
    import shutil

    from edge.config.schema import ModelsConfig
    from edge.runtime.select import int8_twin, load_encoder
    from edge.sidecar import sidecar_path

    assert load_encoder(model, ModelsConfig()).artifact == model
    with pytest.raises(ModelFileError, match=r"int8-cpu\.onnx is missing: make it with `emotion-export int8 .* --form"):
        load_encoder(model, ModelsConfig(int8=True))
    for form in ("cpu", "tensorrt"):
        twin = int8_twin(model, form)
        shutil.copy(model, twin)
        shutil.copy(sidecar_path(model), sidecar_path(twin))
    assert load_encoder(model, ModelsConfig(int8=True)).artifact.name == model.name.replace(".onnx", ".int8-cpu.onnx")
    assert load_encoder(int8_twin(model, "tensorrt"), ModelsConfig(int8=True)).artifact == int8_twin(model, "tensorrt")
    from edge.runtime.select import int8_form

    assert int8_form(ModelsConfig()) == "cpu" and int8_form(ModelsConfig(providers=("cuda", "cpu"))) == "cpu"
    assert int8_form(ModelsConfig(providers=("tensorrt", "cpu"))) == int8_form(ModelsConfig(backend="tensorrt"))
    assert int8_form(ModelsConfig(backend="tensorrt")) == "tensorrt"
