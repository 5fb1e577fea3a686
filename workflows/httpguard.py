"""Outbound HTTP for workflow nodes: DNS checked against private ranges, redirects followed by hand."""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
from django.conf import settings

METADATA_IPS = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


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


def _is_forbidden(ip: ipaddress._BaseAddress) -> bool:
    if ip in METADATA_IPS:
        return True
    if getattr(ip, "ipv4_mapped", None):
        ip = ip.ipv4_mapped
    return (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved
            or ip.is_unspecified or not ip.is_global)


def resolve_checked(host: str, port: int) -> str:
    """Resolve `host`; return an IP we may connect to or raise HttpBlocked."""
    allowed_host = host.lower() in {h.lower() for h in settings.WORKFLOW_HTTP_ALLOWED_HOSTS}
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise HttpBlocked(f"Could not resolve host '{host}'.") from None
    ips = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not ips:
        raise HttpBlocked(f"Could not resolve host '{host}'.")
    if not (allowed_host or settings.WORKFLOW_HTTP_ALLOW_PRIVATE):
        for ip in ips:
            if _is_forbidden(ip):
                raise HttpBlocked(f"Requests to {host} ({ip}) are not allowed: private, loopback, link-local "
                                  "or metadata address.")
    if any(ip in METADATA_IPS for ip in ips) and not allowed_host:
        raise HttpBlocked(f"Requests to the metadata address {ips[0]} are not allowed.")
    return str(ips[0])


def request(*, method: str, url: str, headers: dict | None = None, body: str | bytes | None = None) -> HttpResult:
    max_bytes = settings.WORKFLOW_HTTP_MAX_RESPONSE_BYTES
    timeout = settings.WORKFLOW_HTTP_TIMEOUT_S
    method = method.upper()
    headers = {str(k): str(v) for k, v in (headers or {}).items()}
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for _hop in range(settings.WORKFLOW_HTTP_MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise HttpBlocked(f"Only http and https URLs are allowed, got '{url[:200]}'.")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            ip = resolve_checked(parts.hostname, port)
            # Connect to the checked IP (no second DNS lookup); keep Host and SNI as the name.
            netloc_ip = f"[{ip}]" if ":" in ip else ip
            target = urlunsplit((parts.scheme, f"{netloc_ip}:{port}", parts.path or "/", parts.query, ""))
            req_headers = {**headers, "Host": parts.netloc.split("@")[-1]}
            extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
            try:
                with client.stream(method, target, headers=req_headers, content=body,
                                   extensions=extensions) as resp:
                    if resp.status_code in (301, 302, 303, 307, 308) and "location" in resp.headers:
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
            except httpx.TimeoutException:
                raise HttpBlocked(f"Request to {parts.hostname} timed out after {timeout}s.") from None
            except httpx.HTTPError as exc:
                raise HttpBlocked(f"Request to {parts.hostname} failed: {type(exc).__name__}.") from None
    raise HttpBlocked("Too many redirects.")
