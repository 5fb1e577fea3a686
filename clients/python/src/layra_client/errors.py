"""Errors the client raises: every failure is a LayraError whose message says what went wrong in words."""

from __future__ import annotations

import httpx

from layra_client.sse import parse_events


class LayraError(Exception):
    """Any failure of the client: the server unreachable, a bad answer, an API error."""


class NotLoggedIn(LayraError):
    """No server URL or no credentials: `layra login` first, or set LAYRA_URL and LAYRA_API_KEY."""


class ApiError(LayraError):
    """The API answered an error: `{"error": {"code", "message", "details"}}`."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        super().__init__(self.describe())

    def describe(self) -> str:
        text = self.message.rstrip()
        fields = []
        for name, problems in self.details.items():
            if isinstance(problems, list) and problems and all(isinstance(p, str) for p in problems):
                fields.append(f"{name}: {' '.join(problems)}")
        if fields and not any(field in text for field in fields):
            text = f"{text} ({'; '.join(fields)})"
        return f"{text} [HTTP {self.status}, {self.code}]"

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        body = None
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            # asked for a stream: the error is one `error` event whose data is the error body
            body = next((event.data for event in parse_events(response.text.splitlines())), None)
        else:
            try:
                body = response.json()
            except ValueError:
                pass
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return cls(response.status_code, str(error.get("code") or "error"), str(error["message"]),
                       error.get("details") if isinstance(error.get("details"), dict) else None)
        reason = response.reason_phrase or "error"
        return cls(response.status_code, "http_error",
                   f"The server answered {response.status_code} {reason} for {response.request.method} "
                   f"{response.request.url.path} (not a LAYRA API error: is the URL right?)")
