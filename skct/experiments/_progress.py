"""Progress lines of a run: ``[dataset elapsed] message``, and durations in words."""

from __future__ import annotations

import time

__all__ = []


def fmt_time(seconds):
    """``12.3s``, ``4m05s`` or ``1h02m``."""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


class Log:
    """Progress lines on stdout: ``[dataset elapsed] message`` when ``verbose >= level``."""

    def __init__(self, dataset, verbose):
        self.dataset = dataset
        self.verbose = verbose
        self.start = time.perf_counter()

    def __call__(self, msg, level=1):
        if self.verbose >= level:
            elapsed = time.perf_counter() - self.start
            print(f"[{self.dataset} {fmt_time(elapsed)}] {msg}", flush=True)
