"""Cameras through OpenCV ``VideoCapture``, chosen by URI, reopened with exponential backoff when they fail.

URIs:
  ``v4l2:///dev/video0``  a V4L2 device (``cv2.CAP_V4L2``); USB cameras on any Linux.
  ``gst://<pipeline>``    a GStreamer pipeline ending in ``appsink`` (``cv2.CAP_GSTREAMER``).
  ``csi://N``             a Jetson CSI camera: ``csi_pipeline(N)``, i.e.
      nvarguscamerasrc sensor-id=N ! video/x-raw(memory:NVMM),width=W,height=H,framerate=F/1 !
      nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR !
      appsink drop=true max-buffers=1
GStreamer URIs need an OpenCV built with GStreamer (JetPack's python3-opencv is; the PyPI wheels
are not). How the capture is opened is a seam: ``CameraSource`` takes any callable that returns a
capture-like object (``isOpened``/``read``/``release``), so tests can feed real files or fakes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

import cv2
import numpy as np

from edge.capture.source import Backoff, CapturedFrame, Clock, Emit, Source
from edge.errors import InputError

log = logging.getLogger(__name__)


class CaptureLike(Protocol):
    """What ``CameraSource`` needs of ``cv2.VideoCapture``."""

    def isOpened(self) -> bool: ...  # noqa: N802 - OpenCV's name

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


Opener = Callable[[], CaptureLike]


def csi_pipeline(sensor_id: int, width: int = 1280, height: int = 720, fps: int = 30) -> str:
    """The GStreamer pipeline that reads a Jetson CSI camera into BGR frames for OpenCV."""
    return (
        f"nvarguscamerasrc sensor-id={sensor_id} ! "
        f"video/x-raw(memory:NVMM),width={width},height={height},framerate={fps}/1 ! "
        "nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
        "appsink drop=true max-buffers=1"
    )


def camera_target(uri: str) -> tuple[str, int]:
    """``(what to open, OpenCV API preference)`` for a camera URI, or InputError naming the URI."""
    if uri.startswith("v4l2://"):
        device = uri[len("v4l2://") :]
        if not device.startswith("/dev/"):
            raise InputError(f"{uri}: a V4L2 URI names a device node, e.g. v4l2:///dev/video0")
        return device, cv2.CAP_V4L2
    if uri.startswith("gst://"):
        pipeline = uri[len("gst://") :].strip()
        if "appsink" not in pipeline:
            raise InputError(f"{uri}: a GStreamer pipeline for OpenCV must end in appsink")
        return pipeline, cv2.CAP_GSTREAMER
    if uri.startswith("csi://"):
        sensor = uri[len("csi://") :]
        if not sensor.isdigit():
            raise InputError(f"{uri}: a CSI URI names the sensor id, e.g. csi://0")
        return csi_pipeline(int(sensor)), cv2.CAP_GSTREAMER
    raise InputError(f"{uri}: not a camera URI (v4l2:///dev/videoN, csi://N or gst://<pipeline>) nor an existing "
                     "file (replay a file with file:///path/clip.mp4 or its plain path)")


def opencv_opener(uri: str) -> Opener:
    """A callable opening the camera ``uri`` with ``cv2.VideoCapture`` (checked now, opened later)."""
    target, api = camera_target(uri)
    return lambda: cv2.VideoCapture(target, api)


class CameraSource(Source):
    """Frames from a capture opened by ``opener``; a capture that fails to open or read is reopened.

    Delays between attempts grow exponentially (``backoff``) and reset after a frame is read.
    Counters: ``reopens`` (captures opened after the first), ``read_failures``, ``open_failures``.
    """

    video = True

    def __init__(
        self, opener: Opener, name: str = "camera", backoff: Backoff | None = None, clock: Clock = time.monotonic
    ) -> None:
        super().__init__(name, clock)
        self.opener = opener
        self.backoff = backoff or Backoff()
        self._counts = {"opens": 0, "read_failures": 0, "open_failures": 0}

    def _open(self) -> CaptureLike | None:
        """An opened capture, retrying with backoff; None when stopped meanwhile."""
        while not self.stopping:
            try:
                capture = self.opener()
                if capture.isOpened():
                    self._counts["opens"] += 1
                    return capture
                capture.release()
                problem = "it did not open"
            except Exception as exc:  # OpenCV and drivers raise various errors for a vanished device
                problem = str(exc)
            self._counts["open_failures"] += 1
            delay = self.backoff.next_delay()
            log.warning("camera %s: %s; retrying in %.1f s", self.name, problem, delay)
            self._sleep(delay)
        return None

    def _capture(self, emit: Emit) -> None:
        index = 0
        while not self.stopping:
            capture = self._open()
            if capture is None:
                return
            try:
                while not self.stopping:
                    ok, image = capture.read()
                    if not ok or image is None:
                        self._counts["read_failures"] += 1
                        log.warning("camera %s: reading a frame failed; reopening", self.name)
                        break
                    emit(CapturedFrame(t=self.clock(), index=index, image=image))
                    index += 1
                    self.backoff.reset()
            finally:
                capture.release()
            if not self.stopping:
                self._sleep(self.backoff.next_delay())

    def counters(self) -> dict[str, int]:
        return {"reopens": max(0, self._counts["opens"] - 1), "read_failures": self._counts["read_failures"],
                "open_failures": self._counts["open_failures"]}
