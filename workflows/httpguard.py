"""Outbound HTTP for workflow nodes through the shared guard (layra.netguard): every address checked where it
connects, redirects followed by hand and only on the same host."""

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx2
from django.conf import settings

from layra import netguard
from layra.process_local import ProcessLocal


class HttpBlocked(Exception):
    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


@dataclass
class HttpResult:
    status: int
    headers: dict
    body: str
    url: str


def http_node_policy() -> netguard.Policy:
    """Public addresses, plus WORKFLOW_HTTP_ALLOWED_HOSTS (any address) and, with WORKFLOW_HTTP_ALLOW_PRIVATE,
    private ones (never metadata)."""
    return netguard.Policy(subject="The request", setting="WORKFLOW_HTTP_ALLOWED_HOSTS",
                           hosts=frozenset(h.lower() for h in settings.WORKFLOW_HTTP_ALLOWED_HOSTS),
                           allow_private=settings.WORKFLOW_HTTP_ALLOW_PRIVATE)


_client = ProcessLocal(lambda: netguard.client(policy=http_node_policy))


def _same_host(first: str, then: str) -> bool:
    a, b = urlsplit(first), urlsplit(then)
    return (a.hostname or "").lower() == (b.hostname or "").lower() and (
        a.port == b.port or (a.scheme == "http" and b.scheme == "https" and b.port in (None, 443)))


def request(*, method: str, url: str, headers: dict | None = None, body: str | bytes | None = None) -> HttpResult:
    max_bytes = settings.WORKFLOW_HTTP_MAX_RESPONSE_BYTES
    timeout = settings.WORKFLOW_HTTP_TIMEOUT_S
    method = method.upper()
    headers = {str(k): str(v) for k, v in (headers or {}).items()}
    client = _client.get()
    first = url
    for _hop in range(settings.WORKFLOW_HTTP_MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HttpBlocked(f"Only http and https URLs are allowed, got '{url[:200]}'.")
        if not _same_host(first, url):
            raise HttpBlocked(f"A redirect to another host ({parts.hostname[:200]}) is not allowed.")
        try:
            with client.stream(method, url, headers=headers, content=body, timeout=timeout) as resp:
                if resp.status_code in netguard.REDIRECT_STATUSES and "location" in resp.headers:
                    url = urljoin(url, resp.headers["location"])
                    if resp.status_code == 303 or (resp.status_code in (301, 302) and method == "POST"):
                        method, body = "GET", None
                    continue
                chunks, size = [], 0
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise HttpBlocked(f"Response is larger than {max_bytes} bytes.")
                    chunks.append(chunk)
                return HttpResult(status=resp.status_code, headers=dict(resp.headers),
                                  body=b"".join(chunks).decode(resp.encoding or "utf-8", errors="replace"),
                                  url=url)
        except netguard.Refused as exc:
            raise HttpBlocked(exc.message) from None
        except httpx2.TimeoutException:
            raise HttpBlocked(f"Request to {parts.hostname} timed out after {timeout}s.") from None
        except httpx2.HTTPError as exc:
            raise HttpBlocked(f"Request to {parts.hostname} failed: {type(exc).__name__}.") from None
    raise HttpBlocked("Too many redirects.")
