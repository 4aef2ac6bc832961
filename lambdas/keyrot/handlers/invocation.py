"""What a handler knows of its Lambda invocation: how long it has left."""

from __future__ import annotations

import time
from typing import Any

# Time kept back at the end of an invocation to log the failure and flush metrics.
FAILURE_MARGIN_SECONDS = 5.0


def remaining_seconds(context: Any, default: float) -> float:
    """Seconds until Lambda ends the invocation (`default` outside Lambda, where there is no context)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000 if callable(remaining) else default


def openai_deadline(context: Any) -> float | None:
    """The monotonic time after which no OpenAI retry may start (None outside Lambda: no invocation limit)."""
    if not callable(getattr(context, "get_remaining_time_in_millis", None)):
        return None
    return time.monotonic() + remaining_seconds(context, 0.0) - FAILURE_MARGIN_SECONDS
