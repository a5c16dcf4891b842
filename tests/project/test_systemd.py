"""The systemd unit (verified by systemd-analyze, hardening score) and the install script's interface."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO_ROOT

UNIT = REPO_ROOT / "systemd" / "emotion-edge.service"
INSTALL = REPO_ROOT / "systemd" / "install.sh"


def directives(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every line of a unit file, repeated keys included."""
    section, found = "", []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.append((section, key, value))
    return found


def values(key: str) -> list[str]:
    return [value for _, k, value in directives(UNIT.read_text()) if k == key]


def test_the_unit_says_what_the_service_needs() -> None:
    assert values("Type") == ["notify"]
    assert values("Restart") == ["on-failure"]
    assert values("WatchdogSec") and int(values("WatchdogSec")[0]) > 0
    assert "mosquitto.service" in values("Wants")[0] and "mosquitto.service" in values("After")[0]
    assert values("User") == ["emotion-edge"]
    assert set(values("SupplementaryGroups")[0].split()) == {"video", "audio"}
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert values(key) == ["yes"], key
    assert values("ProtectSystem") == ["strict"]
    assert values("DevicePolicy") == ["closed"]
    allowed = {value.split()[0] for value in values("DeviceAllow")}
    assert {"char-video4linux", "char-alsa", "/dev/nvmap"} <= allowed
    # DeviceAllow= takes node paths or char-/block- groups; globs are only allowed in group names.
    assert all(v.startswith(("char-", "block-")) or "*" not in v for v in allowed)
    command = "/opt/emotion-edge/.venv/bin/emotion-edge run --config /etc/emotion-edge/config.toml"
    assert values("ExecStart") == [command]
    script = INSTALL.read_text()
    assert "PREFIX=/opt/$APP" in script and "$PREFIX/.venv" in script and 'CONFIG_DIR/config.toml' in script


def _verifiable_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at an executable that exists here (verify checks it)."""
    copy = tmp_path / UNIT.name
    copy.write_text(re.sub(r"^ExecStart=\S+", "ExecStart=/bin/true", UNIT.read_text(), flags=re.MULTILINE))
    return copy


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_finds_nothing(tmp_path: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(_verifiable_copy(tmp_path))], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stderr == "" and result.stdout == "", result.stderr + result.stdout


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_hardening_scores_ok(tmp_path: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(_verifiable_copy(tmp_path))],
        capture_output=True,
        text=True,
    )
    match = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert match, result.stdout[-500:] + result.stderr
    assert float(match.group(1)) <= 3.0


def test_install_script_parses_and_explains_itself() -> None:
    subprocess.run(["bash", "-n", str(INSTALL)], check=True)
    usage = subprocess.run([str(INSTALL), "--help"], capture_output=True, text=True)
    assert usage.returncode == 0 and "--uninstall" in usage.stdout
    wrong = subprocess.run([str(INSTALL), "--bogus"], capture_output=True, text=True)
    assert wrong.returncode == 1 and "unknown option --bogus" in wrong.stderr
