"""One progress line per finished unit of work (a job, an epoch), readable in a log file: what is done
of how many, the time so far and an estimate of the time left. Progress bars (tqdm) show only on a
terminal (``inference.bar_disabled``); these lines are what a log, a notebook or a cluster job sees."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


def format_duration(seconds: float) -> str:
    """``45 s``, ``2 min 05 s``, ``1 h 03 min``: rounded to what a reader needs."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Progress:
    """Counts finished units of ``total`` and logs, after each, ``<what> 5/27 done (<label>), 2 min 10 s
    elapsed, about 9 min 30 s left``. The estimate is the mean time per finished unit times the units
    left, so it is only as good as the units are alike (it says nothing before the first one ends)."""

    def __init__(self, what: str, total: int, clock: Callable[[], float] = time.monotonic):
        self.what, self.total, self.clock = what, total, clock
        self.start = clock()
        self.done = 0
        self.failed = 0

    def step(self, label: str = "", failed: bool = False) -> str:
        """Mark one unit finished (``failed``: it ended with an error) and log the line; returns it."""
        self.done += 1
        self.failed += failed
        elapsed = self.clock() - self.start
        left = self.total - self.done
        parts = [f"{self.what} {self.done}/{self.total} done"]
        if label:
            parts[0] += f" ({label}{', failed' if failed else ''})"
        if self.failed:
            parts.append(f"{self.failed} failed")
        parts.append(f"{format_duration(elapsed)} elapsed")
        if left > 0:
            parts.append(f"about {format_duration(elapsed / self.done * left)} left")
        line = ", ".join(parts)
        logger.info(line)
        return line
