"""Keeping dependencies quiet: no telemetry leaves the process, whichever entry point runs.

ONNX Runtime 1.29+ on Linux keeps a telemetry database and device id under
``~/.cache/Microsoft/DeveloperTools/.onnxruntime/`` and uploads events to Microsoft's collector
unless ``ORT_DISABLE_TELEMETRY=1`` is set before ``onnxruntime`` is first imported (the choice is
latched at import; ``onnxruntime.disable_telemetry_events()`` afterwards still leaves the database
and the device id). ``quiet_dependencies`` sets it; every package of this project (``edge``,
``train``, ``export``, ``calibration``) calls it in its ``__init__``, which Python runs before any of
the package's modules can import onnxruntime. A process that imported onnxruntime before this
project gets a warning, since it cannot be switched off any more.
"""

from __future__ import annotations

import logging
import os
import sys

TELEMETRY_OFF = {"ORT_DISABLE_TELEMETRY": "1"}


def quiet_dependencies() -> None:
    """Switch off the dependencies' telemetry (see the module docstring)."""
    late = "onnxruntime" in sys.modules and os.environ.get("ORT_DISABLE_TELEMETRY") != "1"
    for name, value in TELEMETRY_OFF.items():
        os.environ[name] = value
    if late:
        logging.getLogger("edge.privacy").warning(
            "onnxruntime was imported before emotion-edge without ORT_DISABLE_TELEMETRY=1: its telemetry is "
            "already on for this process; set ORT_DISABLE_TELEMETRY=1 in the environment")
