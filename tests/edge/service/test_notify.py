"""sd_notify datagrams on a real AF_UNIX socket (path and abstract namespace) and the watchdog pacing."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.service import notify


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A datagram socket standing in for systemd's, with $NOTIFY_SOCKET pointing at it."""
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield server


def received(server: socket.socket) -> str:
    return server.recv(4096).decode()


def test_ready_status_stopping_are_sent_as_datagrams(notify_socket: socket.socket) -> None:
    assert notify.ready("replaying clip.mp4")
    assert received(notify_socket) == "READY=1\nSTATUS=replaying clip.mp4"
    assert notify.status("3 faces")
    assert received(notify_socket) == "STATUS=3 faces"
    assert notify.stopping()
    assert received(notify_socket) == "STOPPING=1"


def test_abstract_namespace_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"emotion-edge-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        server.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify.ready()
        assert received(server) == "READY=1"


def test_without_systemd_everything_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert notify.ready() is False
    assert notify.stopping() is False
    watchdog = notify.Watchdog()
    assert not watchdog.enabled and watchdog.ping() is False


def test_a_vanished_socket_is_logged_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert notify.sd_notify("READY=1", environ={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}) is False
    assert "sd_notify" in caplog.text and "gone.sock" in caplog.text


def test_watchdog_timeout_comes_from_the_environment() -> None:
    pid = str(os.getpid())
    assert notify.watchdog_timeout({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": pid}) == 20.0
    assert notify.watchdog_timeout({"WATCHDOG_USEC": "20000000"}) == 20.0
    assert notify.watchdog_timeout({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}) is None  # for another process
    assert notify.watchdog_timeout({"WATCHDOG_USEC": "0"}) is None
    assert notify.watchdog_timeout({"WATCHDOG_USEC": "soon"}) is None
    assert notify.watchdog_timeout({}) is None


def test_watchdog_pings_at_half_the_timeout_and_only_when_healthy(notify_socket: socket.socket) -> None:
    now = [100.0]
    environ = {"NOTIFY_SOCKET": os.environ["NOTIFY_SOCKET"], "WATCHDOG_USEC": "2000000"}
    watchdog = notify.Watchdog(clock=lambda: now[0], environ=environ)
    assert watchdog.enabled and watchdog.timeout == 2.0 and watchdog.period == 1.0
    assert watchdog.ping() is True
    assert received(notify_socket) == "WATCHDOG=1"
    now[0] += 0.5
    assert watchdog.ping() is False  # not due yet
    now[0] += 0.6
    assert watchdog.ping(healthy=False) is False  # a stalled pipeline is not vouched for
    assert watchdog.ping() is True
    assert received(notify_socket) == "WATCHDOG=1"
    notify_socket.settimeout(0.05)
    with pytest.raises(TimeoutError):
        notify_socket.recv(4096)  # exactly two datagrams were sent
