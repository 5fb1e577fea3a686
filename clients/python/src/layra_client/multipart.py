"""A streamed multipart/form-data body with a known length, reporting the bytes sent as it goes.

httpx can build multipart bodies itself, but says nothing about progress; this one reads each file in chunks
while the request is being sent and calls `progress(sent, total)` after each, and gives a Content-Length up
front (some servers, Django's development server among them, cannot read a chunked request body)."""

from __future__ import annotations

import mimetypes
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

Progress = Callable[[int, int], None]
CHUNK = 256 * 1024


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class MultipartFiles:
    """Files under one form field name, as an iterable request body."""

    def __init__(self, paths: list[Path], *, field: str = "files", progress: Progress | None = None):
        self.boundary = secrets.token_hex(16)
        self.paths = [Path(p) for p in paths]
        self.progress = progress
        self._heads = []
        for path in self.paths:
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            self._heads.append((f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"{_quote(field)}\"; "
                                f"filename=\"{_quote(path.name)}\"\r\nContent-Type: {content_type}\r\n\r\n").encode())
        self._tail = f"--{self.boundary}--\r\n".encode()
        self.file_bytes = sum(os.path.getsize(p) for p in self.paths)
        self.length = sum(len(h) + 2 for h in self._heads) + self.file_bytes + len(self._tail)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        if self.progress:
            self.progress(0, self.file_bytes)
        for head, path in zip(self._heads, self.paths, strict=True):
            yield head
            with open(path, "rb") as handle:
                while chunk := handle.read(CHUNK):
                    yield chunk
                    sent += len(chunk)
                    if self.progress:
                        self.progress(sent, self.file_bytes)
            yield b"\r\n"
        yield self._tail
