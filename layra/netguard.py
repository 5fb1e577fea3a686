"""Outbound HTTP to addresses that users choose (workflow HTTP nodes, model endpoints).

One guard for every such request:

- only http and https;
- the host is resolved and every address it resolves to must be public: loopback, private, link-local,
  multicast, reserved, unspecified and cloud metadata addresses are refused unless an operator's policy allows
  them;
- the check is made where the socket connects (a network backend of the HTTP client), on the address actually
  connected to: a name that resolves to a public address when a URL is saved and to 127.0.0.1 later (DNS
  rebinding) is refused then; Host and TLS SNI keep the name;
- no proxy from the environment (`trust_env=False`), and the transport can refuse every redirect;
- errors say what was refused, never what an upstream answered.

Infrastructure only: callers (chat's model client, workflows' HTTP node) give the policy.
"""

import contextvars
import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import urlsplit

import httpcore2
import httpx2

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_IPS = frozenset({
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, DigitalOcean
    ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class Refused(Exception):
    """The request was not sent (or its answer not followed); `message` is safe to show the user."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class NotResolved(Refused):
    """The host name did not resolve: nothing was refused by policy, the request just cannot be made."""


class RedirectRefused(Refused):
    """The upstream answered with a redirect and the policy follows none (the answer is discarded)."""


@dataclass(frozen=True)
class AllowedUrl:
    scheme: str
    host: str
    port: int
    path: str  # a prefix, by whole segments; "" allows every path

    def matches(self, *, scheme: str, host: str, port: int, path: str) -> bool:
        if (scheme, host, port) != (self.scheme, self.host, self.port):
            return False
        prefix = self.path.rstrip("/")
        return not prefix or path == prefix or path.startswith(prefix + "/")


@dataclass(frozen=True)
class Policy:
    """What a caller allows beyond public addresses.

    - `urls`: requests under these URLs (same scheme, host and port, path below) may go to any address their
      host resolves to;
    - `networks`: addresses in these networks are allowed (cloud metadata addresses never through a network);
    - `hosts`: host names that may resolve to any address;
    - `allow_private`: every address but metadata ones;
    - `redirects`: False makes a redirect answer an error instead of a response.
    `subject` starts the messages ("The model endpoint"), `setting` names where an operator allows more."""

    subject: str = "The request"
    setting: str = ""
    urls: tuple[AllowedUrl, ...] = ()
    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)
    allow_private: bool = False
    redirects: bool = True

    def url_allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        try:
            port = parts.port or _default_port(parts.scheme)
        except ValueError:
            return False
        host = (parts.hostname or "").lower()
        return any(entry.matches(scheme=parts.scheme.lower(), host=host, port=port, path=parts.path or "/")
                   for entry in self.urls)

    def origin_listed(self, *, host: str, port: int) -> bool:
        return any(entry.host == host.lower() and entry.port == port for entry in self.urls)

    def refusal(self, ip: IPAddress, *, host: str, url_allowed: bool) -> str | None:
        """Why `ip` may not be connected to for `host`, or None when it may."""
        if url_allowed or host.lower() in self.hosts:
            return None
        reason = address_kind(ip)
        if reason is None:
            return None
        if reason != "metadata" and (self.allow_private or any(ip in net for net in self.networks)):
            return None
        hint = f" An operator can allow it with {self.setting}." if self.setting else ""
        return f"{self.subject} resolves to a {reason} address, which is not allowed.{hint}"


def parse_allowlist(entries: Iterable[str]) -> tuple[tuple[AllowedUrl, ...], tuple[IPNetwork, ...]]:
    """Split an operator's allowlist into URLs and networks; raise ValueError on an entry that is neither."""
    return _parse_allowlist(tuple(e.strip() for e in entries if e.strip()))


@lru_cache(maxsize=32)
def _parse_allowlist(entries: tuple[str, ...]) -> tuple[tuple[AllowedUrl, ...], tuple[IPNetwork, ...]]:
    urls, networks = [], []
    for entry in entries:
        if "://" in entry:
            parts = urlsplit(entry)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"allowlist entry {entry!r} is not an http(s) URL")
            urls.append(AllowedUrl(scheme=parts.scheme, host=parts.hostname.lower(),
                                   port=parts.port or _default_port(parts.scheme), path=parts.path or ""))
        else:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"allowlist entry {entry!r} is neither an http(s) URL nor a CIDR") from None
    return tuple(urls), tuple(networks)


def address_kind(ip: IPAddress) -> str | None:
    """The kind of a non-public address ("loopback", "private", ...), None for a public one."""
    if ip in METADATA_IPS:
        return "metadata"
    mapped = getattr(ip, "ipv4_mapped", None) or getattr(ip, "sixtofour", None)
    if mapped is not None:
        if mapped in METADATA_IPS:
            return "metadata"
        ip = mapped
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-public"


def resolve(*, host: str, port: int, subject: str) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise NotResolved(f"{subject}'s host name could not be resolved.") from None
    ips = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
    if not ips:
        raise NotResolved(f"{subject}'s host name could not be resolved.")
    return ips


def resolve_checked(*, host: str, port: int, policy: Policy, url_allowed: bool = False) -> list[IPAddress]:
    """The addresses of `host`, all of which the policy allows; Refused when one is not."""
    ips = resolve(host=host, port=port, subject=policy.subject)
    for ip in ips:
        refusal = policy.refusal(ip, host=host, url_allowed=url_allowed)
        if refusal:
            raise Refused(refusal)
    return ips


def check_url(*, url: str, policy: Policy, resolve_host: bool = True) -> None:
    """Refuse a URL that is not http(s), whose host is a refused address, or (with `resolve_host`) whose host
    name resolves to one.

    For checks before a request is made (a model config being saved): a name that does not resolve is let
    through here, as the request itself will fail (and be checked again where it connects) later."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise Refused(f"{policy.subject} must be an http or https URL.")
    if parts.username or parts.password:
        raise Refused(f"{policy.subject} must not carry a user name or password in the URL.")
    try:
        port = parts.port or _default_port(scheme)
    except ValueError:
        raise Refused(f"{policy.subject} has an invalid port.") from None
    try:
        ipaddress.ip_address(parts.hostname)
    except ValueError:
        if not resolve_host:
            return
    try:
        resolve_checked(host=parts.hostname, port=port, policy=policy, url_allowed=policy.url_allowed(url))
    except NotResolved:
        pass


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


# Whether the request being sent matches one of the policy's URLs: set by the transport, read where it connects
# (the same thread: httpcore connects inside the transport's handle_request).
_url_allowed: contextvars.ContextVar[bool] = contextvars.ContextVar("netguard_url_allowed", default=False)


class _GuardedBackend(httpcore2.SyncBackend):
    """Connects only to addresses the policy allows, resolving the name itself (no second lookup)."""

    def __init__(self, policy: Callable[[], Policy]):
        self._policy = policy

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable | None = None) -> httpcore2.NetworkStream:
        ips = resolve_checked(host=host, port=port, policy=self._policy(), url_allowed=_url_allowed.get())
        error: Exception | None = None
        for ip in ips:
            try:
                return super().connect_tcp(str(ip), port, timeout=timeout, local_address=local_address,
                                           socket_options=socket_options)
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                error = exc
        raise error  # type: ignore[misc]

    def connect_unix_socket(self, *args, **kwargs) -> httpcore2.NetworkStream:  # never for a user's URL
        raise Refused("Unix sockets are not allowed.")


class GuardedTransport(httpx2.HTTPTransport):
    """An httpx2 transport whose connections go through the guard; `policy` is read for every request."""

    def __init__(self, *, policy: Callable[[], Policy], limits: httpx2.Limits | None = None):
        limits = limits or httpx2.Limits(max_connections=100, max_keepalive_connections=20)
        self._policy = policy
        # No proxy (a proxy would connect instead of us), no SSL_CERT_* from the environment either.
        self._pool = httpcore2.ConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(policy),
        )

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        policy = self._policy()
        url = str(request.url)
        check_url(url=url, policy=policy, resolve_host=False)
        allowed = policy.url_allowed(url)
        port = request.url.port or _default_port(request.url.scheme)
        if not allowed and policy.origin_listed(host=request.url.host, port=port):
            # A pooled connection to this origin may have been opened for a listed path: check before reusing it.
            resolve_checked(host=request.url.host, port=port, policy=policy)
        token = _url_allowed.set(allowed)
        try:
            response = super().handle_request(request)
        finally:
            _url_allowed.reset(token)
        if not policy.redirects and response.status_code in REDIRECT_STATUSES:
            response.close()
            raise RedirectRefused(f"{policy.subject} answered with a redirect ({response.status_code}); "
                                  "redirects are not followed.")
        return response


def client(*, policy: Callable[[], Policy], timeout: float | httpx2.Timeout = 30.0,
           limits: httpx2.Limits | None = None) -> httpx2.Client:
    """An httpx2 client through the guard: no redirects followed, nothing taken from the environment, no cookies
    kept (one client serves every user of a process)."""
    no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    return httpx2.Client(transport=GuardedTransport(policy=policy, limits=limits), timeout=timeout,
                         follow_redirects=False, trust_env=False, cookies=httpx2.Cookies(no_cookies))


def refusal_in(exc: BaseException) -> Refused | None:
    """The Refused that caused `exc` (an HTTP library or SDK wraps it), if any."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if isinstance(current, Refused):
            return current
        current = current.__cause__ or current.__context__
        seen += 1
    return None
