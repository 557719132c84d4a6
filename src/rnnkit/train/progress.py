"""Progress output: a one-line bar (loss, throughput, ETA) on a terminal, plain log lines otherwise."""
from __future__ import annotations

import io
import sys
from typing import Optional, TextIO


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    def __init__(self, total_seconds: Optional[float], total_steps: Optional[int], unit: str,
                 stream: Optional[TextIO] = None, quiet: bool = False) -> None:
        self.total_seconds, self.total_steps, self.unit = total_seconds, total_steps, unit
        # sys.stderr as it is now, not as it was at import (a redirect_stderr must reach the log);
        # quiet (data-parallel ranks other than 0): nothing at all.
        self.stream = io.StringIO() if quiet else stream or sys.stderr
        self.tty = self.stream.isatty()
        self.width = 30

    def _fraction(self, step: int, seconds: float) -> Optional[float]:
        fractions = []
        if self.total_seconds:
            fractions.append(seconds / self.total_seconds)
        if self.total_steps:
            fractions.append(step / self.total_steps)
        return min(1.0, max(fractions)) if fractions else None

    def update(self, step: int, seconds: float, loss: float, rate: float) -> None:
        frac = self._fraction(step, seconds)
        eta = f" ETA {_clock(seconds / frac - seconds)}" if frac else ""
        text = f"step {step} loss {loss:.4f} {rate:,.0f} {self.unit}/s {_clock(seconds)}{eta}"
        if self.tty:
            bar = "" if frac is None else "[" + "#" * int(frac * self.width) + \
                "." * (self.width - int(frac * self.width)) + "] "
            self.stream.write("\r\033[K" + bar + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """A log line that does not collide with the bar (the bar is redrawn at the next update)."""
        self.stream.write(("\r\033[K" if self.tty else "") + text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
