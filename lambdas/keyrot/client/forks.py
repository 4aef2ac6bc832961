"""Fork safety: a process forked while a provider refreshes (gunicorn --preload, multiprocessing) must not inherit
a lock held by a thread that does not exist in the child, nor the parent's HTTP connections.

One `os.register_at_fork` hook for the whole process walks a weak registry of live providers; each provider is
registered once, when it is built, and leaves the registry when it is garbage collected.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Protocol


class ForkAware(Protocol):
    def _after_fork_in_child(self) -> None:
        """Drop every lock, in-flight refresh and connection inherited from the parent. Must not raise."""


_live: weakref.WeakSet[ForkAware] = weakref.WeakSet()
_guard = threading.Lock()
_hook_installed = False


def reset_after_fork(provider: ForkAware) -> None:
    """Register `provider` so that a forked child resets it before any of its code runs."""
    global _hook_installed
    with _guard:
        if not _hook_installed and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_reset_in_child)
            _hook_installed = True
        _live.add(provider)


def _reset_in_child() -> None:
    global _guard
    _guard = threading.Lock()  # another thread of the parent may have held it at the fork
    for provider in list(_live):
        provider._after_fork_in_child()
