"""What the CLI prints: tables on stdout, progress bars and messages on stderr."""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO


def table(rows: list[list[str]], headers: list[str], *, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    if not rows:
        return
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    for row in [headers, *rows]:
        out.write("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")


def one_line(text: str, limit: int = 100) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def citations_print(citations: list[dict], *, out: TextIO | None = None) -> None:
    """An answer's sources after it: `[n] file, page p  (score s)`."""
    out = out or sys.stdout
    if not citations:
        return
    out.write("\nSources:\n")
    for rank, citation in enumerate(citations, start=1):
        out.write(f"[{citation.get('index', rank)}] {citation['filename']}, page {citation['page_number']}  "
                  f"(score {citation.get('score', 0):.3f})\n")


def size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


class ProgressBar:
    """One line that redraws itself on a terminal; elsewhere (a log, a pipe) one line per 10 % step or change of
    text, so logs stay short."""

    def __init__(self, label: str, *, stream: TextIO | None = None, width: int = 24):
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.width = width
        self._last_line = ""
        self._last_step: tuple | None = None
        self._last_draw = 0.0

    def update(self, done: float, total: float, detail: str = "") -> None:
        fraction = min(1.0, done / total) if total else 0.0
        filled = int(fraction * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        percent = f"{fraction * 100:3.0f}%" if total else "   "
        line = f"{self.label} [{bar}] {percent} {detail}".rstrip()
        if self.tty:
            now = time.monotonic()
            if line == self._last_line or (now - self._last_draw < 0.1 and fraction < 1.0):
                return
            columns = shutil.get_terminal_size((100, 20)).columns
            self.stream.write("\r" + line[: columns - 1].ljust(min(len(self._last_line), columns - 1)))
            self._last_draw = now
        else:
            step = (int(fraction * 10), detail if not total else "")
            if step == self._last_step:
                return
            self._last_step = step
            self.stream.write(line + "\n")
        self._last_line = line
        self.stream.flush()

    def done(self, message: str = "") -> None:
        if self.tty:
            self.stream.write("\r" + " " * len(self._last_line) + "\r")
        if message:
            self.stream.write(message + "\n")
        self.stream.flush()
