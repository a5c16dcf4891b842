"""Config: defaults, strict loading with file:line:key errors, --set overrides, the generated example, check-config."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from edge.config.loader import ConfigError, apply_overrides, load_config, parse_overrides, tomllib
from edge.config.render import check_config, render_example, render_toml
from edge.config.schema import EXAMPLE_OVERRIDES, Config, OutputConfig
from edge.config.setting import SettingError
from edge.errors import InputError

EXAMPLE_FILE = REPO_ROOT / "systemd" / "config.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "# nothing set\n"))
    assert config == Config()
    assert config.output.mqtt_url is None and config.output.prefix == "emotion"
    assert config.output.buffer_size == 1000 and config.service.log_level == "INFO"


def test_every_field_has_a_description_and_a_default() -> None:
    for section in dataclasses.fields(Config):
        for field in dataclasses.fields(getattr(Config(), section.name)):
            assert field.metadata.get("doc"), f"{section.name}.{field.name} has no description"
            assert field.default is not dataclasses.MISSING, f"{section.name}.{field.name} has no default"
            if field.default is None:
                assert field.metadata["example"] is not None, f"{section.name}.{field.name}: unset without an example"


def test_values_are_read_and_converted(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("not checked here")
    path = write(
        tmp_path,
        """
[output]
mqtt_url = "mqtts://broker.local"
tls_ca = "ca.crt"
reconnect_min_s = 2          # an integer where a float is expected is fine
device = "kiosk-7"

[models]
providers = ["cuda", "cpu"]
""",
    )
    config = load_config(path)
    assert config.output.tls_ca == tmp_path / "ca.crt"  # relative to the file's directory
    assert config.output.reconnect_min_s == 2.0 and isinstance(config.output.reconnect_min_s, float)
    assert config.models.providers == ("cuda", "cpu")
    assert config.pipeline == Config().pipeline


@pytest.mark.parametrize(
    ("text", "line", "key", "problem"),
    [
        ("[output]\nprefix = 'x'\nbufer_size = 10\n", 3, "output.bufer_size", "unknown key (did you mean buffer_size?"),
        ("[output]\n\n# c\nbuffer_size = 'ten'\n", 4, "output.buffer_size", "must be an integer, got 'ten'"),
        ("[source]\nrealtime = 1\n", 2, "source.realtime", "must be a boolean"),
        ("[pipeline]\ndetect_every = true\n", 2, "pipeline.detect_every", "must be an integer"),
        ("[pipeline]\ndetect_every = 0\n", 2, "pipeline.detect_every", "at least 1"),
        ("[service]\nlog_level = 'LOUD'\n", 2, "service.log_level", "must be one of 'DEBUG'"),
        ("[smoothing]\nema_alpha = 1.5\n", 2, "smoothing.ema_alpha", "at most 1.0"),
        ("[output]\nmqtt_url = 'http://x'\n", 2, "output.mqtt_url", "mqtt://host[:port]"),
        ("[output]\ndevice = 'a/b'\n", 2, "output.device", "no spaces, '/'"),
        ("[models]\nproviders = 'CPU'\n", 2, "models.providers", "must be an array"),
        ("[models]\nspeech = 'missing.onnx'\n", 2, "models.speech", "does not exist"),
        ("[source]\nvideo = 'file://a.mp4'\n[camera]\nx = 1\n", 3, "camera", "unknown section"),
        ("source = 3\n", 1, "source", "must be a table"),
        ("output.prefix = 'ok'\noutput.keepalive_s = 1\n", 2, "output.keepalive_s", "at least 5"),
        ("[output]\nmqtt_url = 'mqtt://h'\npassword = 'p'\n", 3, "output.password", "without username"),
        ("[output]\ntls_insecure = true\n", 2, "output.tls_insecure", "not an mqtts:// URL"),
        ("[output.tls]\nca = 'x'\n", 1, "output.tls", "unknown key"),
    ],
)
def test_bad_settings_name_the_file_line_and_key(tmp_path: Path, text: str, line: int, key: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: {key}: "), message
    assert problem in message
    assert isinstance(caught.value, InputError)


def test_a_key_is_found_in_its_own_section_not_an_earlier_one(tmp_path: Path) -> None:
    path = write(tmp_path, "[pipeline]\nmax_faces = 2\n\n[output]\nprefix = 'p'\nmax_faces = 3\n")
    with pytest.raises(ConfigError, match=r":6: output.max_faces: unknown key"):
        load_config(path)


def test_syntax_errors_and_missing_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config.toml: not valid TOML: .*line 2"):
        load_config(write(tmp_path, "[output]\nprefix = \n"))
    with pytest.raises(ConfigError, match=r"nope.toml: cannot read"):
        load_config(tmp_path / "nope.toml")


def test_overrides_use_toml_value_syntax() -> None:
    overrides = parse_overrides(
        [
            "output.buffer_size=50",
            "output.mqtt_url=mqtt://10.0.0.2:1884",  # bare string
            "output.device=123",  # a str field keeps the text
            "source.realtime=false",
            "models.providers=['cpu']",
            "smoothing.ema_alpha = 0.5",
        ]
    )
    config = apply_overrides(Config(), overrides)
    assert config.output.buffer_size == 50
    assert config.output.mqtt_url == "mqtt://10.0.0.2:1884"
    assert config.output.device == "123"
    assert config.source.realtime is False
    assert config.models.providers == ("cpu",)
    assert config.smoothing.ema_alpha == 0.5
    assert apply_overrides(config, {"output.mqtt_url": ""}).output.mqtt_url is None  # empty unsets
    assert apply_overrides(config, {"output.buffer_size": 7}).output.buffer_size == 7  # typed values too


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ("output.buffer_size=lots", r"--set: output.buffer_size: must be an integer, got 'lots'"),
        ("output.nope=1", r"--set: output.nope: unknown key"),
        ("nope.key=1", r"--set: nope: unknown section"),
        ("pipeline.detect_every=", r"--set: pipeline.detect_every: must be an integer, got ''"),
    ],
)
def test_bad_overrides_name_the_key(item: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        apply_overrides(Config(), parse_overrides([item]))


def test_malformed_override_syntax() -> None:
    for item in ("buffer_size=1", "output.buffer_size", "a.b.c=1"):
        with pytest.raises(ConfigError, match="expected section.key=value"):
            parse_overrides([item])


def test_cross_field_rules_hold_for_direct_construction() -> None:
    with pytest.raises(SettingError, match="tls_cert and tls_key go together"):
        OutputConfig(mqtt_url="mqtts://h", tls_cert=Path("/etc/hostname"))
    with pytest.raises(SettingError, match="reconnect_max_s"):
        OutputConfig(reconnect_min_s=5.0, reconnect_max_s=1.0)


def test_rendered_toml_reads_back_to_the_same_config(tmp_path: Path) -> None:
    config = apply_overrides(
        Config(), {"output.mqtt_url": "mqtt://h:1", "models.providers": "['cuda', 'cpu']", "source.loop": "true"}
    )
    path = write(tmp_path, render_toml(config))
    assert load_config(path) == config


def test_the_password_is_masked_when_printed() -> None:
    config = apply_overrides(Config(), {"output.mqtt_url": "mqtt://h", "output.username": "u", "output.password": "s3"})
    text = render_toml(config)
    assert "s3" not in text and 'password = "***"' in text


def test_the_committed_example_is_the_generated_one_and_loads_to_defaults_plus_the_service_settings() -> None:
    assert EXAMPLE_FILE.read_text() == render_example(), (
        "systemd/config.example.toml is stale: python -m edge.config > systemd/config.example.toml"
    )
    example = load_config(EXAMPLE_FILE)
    assert example == apply_overrides(Config(), EXAMPLE_OVERRIDES)
    # Apart from the three service settings, every value in the example is the default.
    assert dataclasses.replace(
        example,
        source=Config().source,
        output=dataclasses.replace(example.output, mqtt_url=None),
    ) == Config()
    assert example.source.video == "v4l2:///dev/video0" and example.output.mqtt_url == "mqtt://127.0.0.1:1883"
    # Every key is documented in the file (set, or commented out when unset).
    text = EXAMPLE_FILE.read_text()
    for section in dataclasses.fields(Config):
        assert f"[{section.name}]" in text
        for field in dataclasses.fields(getattr(Config(), section.name)):
            assert f"\n{field.name} = " in text or f"\n# {field.name} = " in text, field.name
    assert tomllib.loads(text)  # plain TOML


def test_check_config_prints_the_effective_config_or_the_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path, "[output]\nprefix = 'lab'\n")
    assert check_config(good, ["output.buffer_size=5"]) == 0
    out = capsys.readouterr().out
    assert 'prefix = "lab"' in out and "buffer_size = 5" in out
    assert tomllib.loads(out)["output"]["prefix"] == "lab"

    bad = write(tmp_path, "[output]\nprefix = 'lab'\nbuffer = 5\n")
    assert check_config(bad) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{bad}:3: output.buffer: unknown key" in captured.err
