"""A server-sent events reader: the API's streams (answers, ingestion progress, workflow runs) in one shape."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Event:
    """One server-sent event: its type (`event:`), its JSON data and its `id:` when it has one."""

    name: str
    data: dict = field(default_factory=dict)
    id: str | None = None


def parse_events(lines: Iterable[str]) -> Iterator[Event]:
    """Events from the lines of a `text/event-stream` (comments and keep-alives skipped)."""
    name, data, event_id = "message", [], None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                text = "\n".join(data)
                try:
                    payload = json.loads(text)
                except ValueError:
                    payload = {"text": text}
                yield Event(name, payload if isinstance(payload, dict) else {"value": payload}, event_id)
            name, data, event_id = "message", [], None
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if key == "event":
            name = value
        elif key == "data":
            data.append(value)
        elif key == "id":
            event_id = value
    if data:  # a stream cut after its last data line
        try:
            payload = json.loads("\n".join(data))
        except ValueError:
            payload = {"text": "\n".join(data)}
        yield Event(name, payload if isinstance(payload, dict) else {"value": payload}, event_id)
