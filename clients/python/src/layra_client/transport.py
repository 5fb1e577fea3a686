"""The HTTP side of the client: the API root, credentials (an API key, or a token pair refreshed when the access
token expires), errors in words, paginated lists and server-sent event streams."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from layra_client.errors import ApiError, LayraError, NotLoggedIn
from layra_client.sse import Event, parse_events

API_PREFIX = "/api/v1"
USER_AGENT = "layra-client/0.1"
TokensSaved = Callable[[str, str], None]


def api_root(url: str) -> str:
    """`https://host[/prefix]` with or without a trailing `/api/v1`, as the API root ending with `/api/v1/`."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise LayraError(f"The server URL must start with http:// or https:// (got {url!r}).")
    if url.endswith(API_PREFIX):
        url = url[: -len(API_PREFIX)]
    return f"{url}{API_PREFIX}/"


class Transport:
    """One kept-alive HTTP connection pool to one server, with its credentials."""

    def __init__(self, url: str, *, api_key: str | None = None, access_token: str | None = None,
                 refresh_token: str | None = None, on_tokens: TokensSaved | None = None, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None):
        self.url = url.strip().rstrip("/")
        self.root = api_root(url)
        self.api_key = api_key
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.on_tokens = on_tokens
        self.timeout = timeout
        self.http = httpx.Client(base_url=self.root, timeout=timeout, transport=transport,
                                 headers={"User-Agent": USER_AGENT, "Accept": "application/json"})

    def close(self) -> None:
        self.http.close()

    # -- credentials --------------------------------------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        token = self.api_key or self.access_token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _can_refresh(self) -> bool:
        return not self.api_key and bool(self.refresh_token)

    def refresh(self) -> None:
        """A new token pair for the refresh token (each refresh token is spent once)."""
        response = self._send("POST", "auth/refresh/", json={"refresh": self.refresh_token}, auth=False)
        if response.status_code != 200:
            error = ApiError.from_response(response)
            raise NotLoggedIn(f"The login has expired ({error.message.rstrip('.')}); run `layra login` again.")
        pair = response.json()
        self.access_token, self.refresh_token = pair["access"], pair["refresh"]
        if self.on_tokens:
            self.on_tokens(self.access_token, self.refresh_token)

    # -- requests -----------------------------------------------------------------------------------------------

    def _build(self, method: str, path: str, *, auth: bool = True, headers: dict | None = None,
               **kwargs: Any) -> httpx.Request:
        merged = {**(self._auth_headers() if auth else {}), **(headers or {})}
        return self.http.build_request(method, path.lstrip("/"), headers=merged, **kwargs)

    def _send(self, method: str, path: str, *, stream: bool = False, auth: bool = True, **kwargs: Any
              ) -> httpx.Response:
        request = self._build(method, path, auth=auth, **kwargs)
        try:
            return self.http.send(request, stream=stream)
        except httpx.TimeoutException as exc:
            raise LayraError(f"The server at {self.url} did not answer in time ({type(exc).__name__}).") from exc
        except httpx.TransportError as exc:
            raise LayraError(f"Could not reach the server at {self.url}: {exc}") from exc

    def send(self, method: str, path: str, *, stream: bool = False, auth: bool = True, **kwargs: Any
             ) -> httpx.Response:
        """The response of a successful request (2xx); an ApiError otherwise. An expired access token is
        refreshed once and the request sent again."""
        response = self._send(method, path, stream=stream, auth=auth, **kwargs)
        if response.status_code == 401 and auth and self._can_refresh():
            response.close()
            self.refresh()
            response = self._send(method, path, stream=stream, auth=auth, **kwargs)
        if response.status_code >= 400:
            if stream:
                response.read()
            response.close()
            raise ApiError.from_response(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.send(method, path, **kwargs)
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.json("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict | None = None, **kwargs: Any) -> Any:
        return self.json("POST", path, json=body if body is not None else {}, **kwargs)

    def delete(self, path: str) -> None:
        self.send("DELETE", path)

    def pages(self, path: str, **params: Any) -> Iterator[dict]:
        """Every item of a paginated list (`{count, next, previous, results}`), a page of 200 at a time."""
        page = 1
        while True:
            body = self.get(path, page=page, page_size=200, **params)
            yield from body["results"]
            if not body.get("next"):
                return
            page += 1

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        read = None if kwargs.pop("no_read_timeout", False) else max(self.timeout, 300.0)
        timeout = httpx.Timeout(self.timeout, read=read)
        response = self.send(method, path, stream=True, timeout=timeout,
                             headers={"Accept": "text/event-stream"}, **kwargs)
        try:
            yield response
        finally:
            response.close()

    def events(self, method: str, path: str, **kwargs: Any) -> Iterator[Event]:
        """The server-sent events of one request, as they arrive."""
        with self.stream(method, path, **kwargs) as response:
            try:
                yield from parse_events(response.iter_lines())
            except httpx.TimeoutException as exc:
                raise LayraError(f"The server at {self.url} stopped sending events ({type(exc).__name__}).") from exc
            except httpx.TransportError as exc:
                raise LayraError(f"The connection to {self.url} broke mid-stream: {exc}") from exc
