"""sd_notify over ``$NOTIFY_SOCKET``: READY=1, STATUS=..., WATCHDOG=1, STOPPING=1 for a Type=notify unit.

Without systemd (``NOTIFY_SOCKET`` unset) every call is a no-op that returns False. The protocol
is one datagram of newline-separated ``KEY=value`` lines to an AF_UNIX socket; a path starting
with ``@`` names Linux's abstract namespace. ``$WATCHDOG_USEC`` (set by ``WatchdogSec=``) is the
watchdog timeout; ``Watchdog`` pings at half of it, and only when the caller says the service
is healthy, so a stalled pipeline gets restarted by systemd.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


def _address(environ: Mapping[str, str]) -> str | None:
    path = environ.get("NOTIFY_SOCKET")
    if not path:
        return None
    return "\0" + path[1:] if path.startswith("@") else path


def sd_notify(*assignments: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``KEY=value`` assignments in one datagram; True if it was sent, False without systemd or on error."""
    address = _address(os.environ if environ is None else environ)
    if address is None:
        return False
    message = "\n".join(assignments).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message, address)
    except OSError as exc:
        log.warning("sd_notify to %r failed: %s", address.replace("\0", "@"), exc)
        return False
    return True


def ready(status: str | None = None) -> bool:
    """The service finished starting (systemd: ``active``)."""
    return sd_notify("READY=1", *([] if status is None else [f"STATUS={status}"]))


def status(text: str) -> bool:
    """A one-line status shown by ``systemctl status``."""
    return sd_notify(f"STATUS={text}")


def stopping() -> bool:
    """The service began its shutdown."""
    return sd_notify("STOPPING=1")


def watchdog_timeout(environ: Mapping[str, str] | None = None) -> float | None:
    """systemd's watchdog timeout in seconds for this process (``$WATCHDOG_USEC``), or None when off."""
    environ = os.environ if environ is None else environ
    usec = environ.get("WATCHDOG_USEC")
    pid = environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not an integer", usec)
        return None
    return value / 1e6 if value > 0 else None


class Watchdog:
    """Pings systemd's watchdog (WATCHDOG=1) at most every ``period`` seconds (half the timeout).

    Call ``ping(healthy)`` often (e.g. on every pipeline tick); it sends only when due and only
    when ``healthy`` is true. ``enabled`` is False when systemd set no watchdog.
    """

    def __init__(
        self,
        timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._environ = environ
        self.timeout = watchdog_timeout(environ) if timeout is None else timeout
        self.period = None if self.timeout is None else self.timeout / 2
        self._clock = clock
        self._last: float | None = None

    @property
    def enabled(self) -> bool:
        return self.period is not None

    def ping(self, healthy: bool = True) -> bool:
        """Send WATCHDOG=1 if enabled, healthy and at least ``period`` since the last ping; True if sent."""
        if self.period is None or not healthy:
            return False
        now = self._clock()
        if self._last is not None and now - self._last < self.period:
            return False
        self._last = now
        return sd_notify("WATCHDOG=1", environ=self._environ)
