"""The demo clip shipped with the package: what ``emotion-edge run`` and ``bench`` replay when given no source.

``DEMO_CLIP`` is one unchanged RAVDESS take (attribution and licence in ``ATTRIBUTION.md`` beside
it); it is package data, so a non-editable install has it too.
"""

from __future__ import annotations

from pathlib import Path

DEMO_CLIP = Path(__file__).resolve().parent / "01-01-03-01-01-02-05.mp4"
