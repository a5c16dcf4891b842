"""What capture hardware this machine has: V4L2 cameras (probed with OpenCV) and sounddevice input devices."""

from __future__ import annotations

import glob
from typing import Any

import cv2

from edge.capture.microphone import refresh_devices, sounddevice


def list_cameras(pattern: str = "/dev/video*") -> list[dict[str, Any]]:
    """Every V4L2 device node with its URI and, when OpenCV can open it, the frame size and rate it offers."""
    cameras = []
    for node in sorted(glob.glob(pattern), key=lambda path: (len(path), path)):
        capture = cv2.VideoCapture(node, cv2.CAP_V4L2)
        try:
            opened = capture.isOpened()
            entry: dict[str, Any] = {"kind": "camera", "uri": f"v4l2://{node}", "opens": opened}
            if opened:
                entry.update(
                    width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                    height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                    fps=round(float(capture.get(cv2.CAP_PROP_FPS)), 2),
                )
        finally:
            capture.release()
        cameras.append(entry)
    return cameras


def list_microphones() -> list[dict[str, Any]]:
    """Every PortAudio device with input channels: index, name, host API, channels, default rate, default flag.

    ``InputError`` with the install hint when PortAudio is missing.
    """
    sd = sounddevice()
    refresh_devices()
    default_input = sd.default.device[0]
    hostapis = sd.query_hostapis()
    return [
        {
            "kind": "microphone",
            "index": int(device["index"]),
            "name": device["name"],
            "hostapi": hostapis[device["hostapi"]]["name"],
            "channels": int(device["max_input_channels"]),
            "default_samplerate": float(device["default_samplerate"]),
            "default": int(device["index"]) == default_input,
        }
        for device in sd.query_devices()
        if device["max_input_channels"] > 0
    ]
