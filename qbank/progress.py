"""A progress bar with ETA on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, label: str, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label = label
        self.shown_at = 0.0
        self.drawn = False
        # The rate is measured from the first progress seen, not from the start: workers import torch first.
        self.first: tuple[float, int] | None = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        now = time.monotonic()
        if done < total and now - self.shown_at < 0.1:
            return
        self.shown_at = now
        if self.first is None and done > 0:
            self.first = (now, done)
        eta = self.eta(now, done, total)
        self.stream.write(f"\r{self.label} [{self.bar(done, total)}] {done}/{total}  ETA {eta} ")
        self.stream.flush()
        self.drawn = True

    def note(self, text: str) -> None:
        """A line saying what is happening, for a step without a count; cleared on close."""
        if self.enabled:
            self.stream.write(f"\r{text[:79]}")
            self.stream.flush()
            self.drawn = True

    @staticmethod
    def bar(done: int, total: int) -> str:
        filled = min(30, int(30 * done / total))
        return "#" * filled + "-" * (30 - filled)

    def eta(self, now: float, done: int, total: int) -> str:
        """Seconds left at the rate seen since the first work was done, or `--` before there is a rate."""
        if self.first is None or done <= self.first[1] or now <= self.first[0]:
            return "  --"
        since, done_then = self.first
        return f"{(total - done) * (now - since) / (done - done_then):3.0f}s"

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\r" + " " * 80 + "\r")
            self.stream.flush()
