"""matplotlib's pyplot on the Agg backend for the PNG writers, or a clear error naming the ``plots`` extra."""

from __future__ import annotations

from typing import Any

from edge.errors import InputError


def plots_hint(what: str) -> str:
    """The message for ``what`` (e.g. "the timeline") when matplotlib is missing."""
    return f"{what} needs matplotlib: pip install 'emotion-edge[plots]' (in a checkout: script/setup plots)"


def pyplot(what: str) -> Any:
    """``matplotlib.pyplot`` drawing to files; InputError with ``plots_hint(what)`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError:
        raise InputError(plots_hint(what)) from None
    return plt
