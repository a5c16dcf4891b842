"""A clip with several real faces for the bench: one take tiled into a grid, its sound kept.

``emotion-edge bench --faces N`` measures the daemon with N faces in frame. The faces are the same
real take shrunk into the cells of a grid of the frame's own size (2 x 2 for 4 faces; cells left
over stay black), encoded again with H.264 at the take's frame rate, and the take's audio packets
are copied as they are, so that decoding, detection and the speech path cost what they would with
N people in front of the camera. The clip is made once per take and grid and reused.
"""

from __future__ import annotations

import math
from pathlib import Path

import av
import cv2
import numpy as np

from edge.errors import InputError
from edge.features.video import iter_video_frames


def grid_of(faces: int) -> tuple[int, int]:
    """(columns, rows) of the smallest near-square grid with at least ``faces`` cells."""
    if faces < 1:
        raise InputError(f"--faces must be at least 1, got {faces}")
    columns = math.ceil(math.sqrt(faces))
    return columns, math.ceil(faces / columns)


def tiled_clip(take: Path, faces: int, out_dir: Path) -> Path:
    """``out_dir/<take>-<faces>faces.mp4``: ``take`` tiled ``faces`` times (see the module docstring)."""
    out = out_dir / f"{take.stem}-{faces}faces.mp4"
    if out.is_file():
        return out
    columns, rows = grid_of(faces)
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial.mp4")
    with av.open(str(take)) as source, av.open(str(partial), mode="w") as container:
        video_in = source.streams.video[0]
        width, height = video_in.codec_context.width, video_in.codec_context.height
        cell_w, cell_h = width // columns // 2 * 2, height // rows // 2 * 2
        video = container.add_stream("libx264", rate=video_in.average_rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio_in = source.streams.audio[0] if source.streams.audio else None
        audio = container.add_stream_from_template(audio_in) if audio_in is not None else None
        for frame in iter_video_frames(take, 1):
            canvas = np.zeros((height, width, 3), dtype=np.uint8)
            cell = cv2.resize(frame.image, (cell_w, cell_h), interpolation=cv2.INTER_AREA)
            for index in range(faces):
                row, column = divmod(index, columns)
                canvas[row * cell_h:(row + 1) * cell_h, column * cell_w:(column + 1) * cell_w] = cell
            for packet in video.encode(av.VideoFrame.from_ndarray(canvas, format="bgr24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if audio_in is not None and audio is not None:
            for packet in source.demux(audio_in):
                if packet.dts is not None:
                    packet.stream = audio
                    container.mux(packet)
    partial.rename(out)
    return out
