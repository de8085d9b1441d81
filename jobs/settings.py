"""Redis connection settings: which server, how to reach it, and errors that never leak secrets.

Which URL a command uses is jobs.connection's choice. `redis://` and `rediss://` (TLS)
URLs may hold `user:password@` or `:password@`, a db number and redis-py's TLS options in
the query (`?ssl_cert_reqs=required&ssl_ca_certs=/path/ca.pem`). $REDIS_CA_CERT names a
CA file for a hosted Redis with a private CA when the URL does not.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.retry import Retry

SCHEMES = ("redis", "rediss")
MASK = "****"
URL_FIX = "set REDIS_URL (or pass --redis-url, which ps shows to every user)"
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)([^\s:/@]*):([^\s/@]*)@", re.IGNORECASE)
_LONE_USERINFO = re.compile(r"(\brediss?://)([^\s:/@]+)@", re.IGNORECASE)
_SECRET_QUERY = re.compile(r"([?&][a-z_]*password=)([^&\s]*)", re.IGNORECASE)
_REDIS_PY_PREFIX = re.compile(r"^Error -?\d+ connecting to \S+:\d+\.\s*")


class RedisConfigError(Exception):
    """A Redis URL or server that cannot be used: one line naming the problem and the fix.

    The message never holds a password: URLs in it are redacted.
    """

    user_facing = True


@dataclass(frozen=True, repr=False)
class RedisSettings:
    """Where Redis is. `url` may hold a password: only `redacted_url` is ever shown."""

    url: str
    socket_timeout_s: float = 10.0
    # a connection idle longer than this is PINGed before its next command; 0: never.
    # Every PING is billed by a hosted Redis, and a dropped connection is found by the
    # command itself, which is then sent again on a new one (`retries`)
    health_check_interval_s: int = 0
    # a command that meets a dropped connection (hosted Redis closes idle ones after a few
    # minutes, a restart closes all) reconnects and is sent again: this many times, with
    # jittered backoff up to 2 s (~4 s in all); longer outages are the callers' to ride out
    retries: int = 4

    @property
    def redacted_url(self) -> str:
        return redacted_url(self.url)

    def __repr__(self) -> str:
        return f"RedisSettings({self.redacted_url})"

    def __str__(self) -> str:
        return self.redacted_url

    def client(self, *, check: bool = True, name: str | None = None) -> redis.Redis:
        """A client (bytes replies, as RQ needs); `check` pings first, else RedisConfigError.
        `name` labels its connections in Redis's CLIENT LIST (which tab holds which)."""
        kwargs = _client_kwargs(self)
        if name:
            kwargs["client_name"] = re.sub(r"[^A-Za-z0-9_.:@-]", "_", name)[:100]
        if check:
            _check(self, kwargs)
        return redis.Redis.from_url(self.url, **kwargs)


def redacted_url(url: str) -> str:
    """`url` with its password and any secret query value masked, as scheme://user:****@host:port/db.

    Everything before the last '@' is the userinfo (a password may hold ':', '/' or '@');
    a URL without a scheme (`user:password@host:port`) shows only `****@host:port`."""
    scheme, sep, rest = url.partition("://")
    if not sep:  # not a URL: whatever precedes an '@' may be a password
        _, at, tail = url.rpartition("@")
        return redact(f"{MASK}@{tail}" if at else url, url)
    userinfo, at, hostpart = rest.rpartition("@")
    try:
        parts = urlsplit(f"{scheme}://{hostpart}")
        host = parts.hostname or "localhost"
        port = parts.port or 6379
    except ValueError:
        return redact(url, url)
    if ":" in host:
        host = f"[{host}]"
    user, colon, _ = userinfo.partition(":")
    # a lone userinfo is often a password or token: never show it
    auth = (f"{unquote(user)}:{MASK}@" if colon else f"{MASK}@") if at else ""
    db = parts.path.strip("/") or "0"
    pairs = [(k, MASK if "password" in k.lower() else v) for k, v in parse_qsl(parts.query)]
    query = f"?{urlencode(pairs, safe='/:*')}" if pairs else ""
    return f"{parts.scheme}://{auth}{host}:{port}/{db}{query}"


def redact(text: str, url: str | None = None) -> str:
    """`text` with the password of `url` (raw and %-encoded) and any URL userinfo masked."""
    secrets = _secrets_of(url) if url else set()
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:{MASK}@", text)
    text = _LONE_USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    return _SECRET_QUERY.sub(lambda m: f"{m.group(1)}{MASK}", text)


def holds_secret(url: str) -> bool:
    """Whether `url` holds a password, a lone token or a secret query value."""
    return bool(_secrets_of(url))


def _secrets_of(url: str) -> set[str]:
    """The password (or lone token) of `url`, with or without a scheme, and any secret
    query value: raw, %-decoded and %-encoded."""
    _, sep, rest = url.partition("://")
    userinfo, at, hostpart = (rest if sep else url).rpartition("@")
    candidates: list[str] = []
    if at:
        user, colon, password = userinfo.partition(":")
        candidates += [password] if colon else [user]
    query = hostpart.partition("?")[2] if at else url.partition("?")[2]
    candidates += [v for k, v in parse_qsl(query) if "password" in k.lower()]
    found: set[str] = set()
    for value in filter(None, candidates):
        found.update({value, unquote(value), quote(unquote(value), safe="")})
    return found


def _client_kwargs(settings: RedisSettings) -> dict:
    """from_url keyword arguments; validates the scheme and the CA file."""
    shown = settings.redacted_url
    if "://" not in settings.url:
        raise RedisConfigError(
            f"Redis URL {shown} has no scheme; fix: write it as "
            f"redis://[user:password@]host:port/db (rediss:// for TLS) and {URL_FIX}"
        )
    try:
        parts = urlsplit(settings.url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        reason = redact(str(exc), settings.url)
        raise RedisConfigError(
            f"invalid Redis URL {shown} ({reason}); fix: use redis://[:password@]host:port/db "
            f"or rediss:// for TLS and {URL_FIX}"
        ) from None
    if parts.scheme not in SCHEMES:
        raise RedisConfigError(
            f"unsupported Redis URL scheme '{parts.scheme}' in {shown}; fix: use "
            f"redis://host:port/db, or rediss:// for TLS, and {URL_FIX}"
        )
    kwargs: dict = {
        "decode_responses": False,
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": settings.socket_timeout_s,
        "health_check_interval": settings.health_check_interval_s,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.25, cap=2.0), settings.retries),
        "socket_keepalive": True,
        "socket_keepalive_options": keepalive_options(),
    }
    query = dict(parse_qsl(parts.query))
    if parts.scheme == "redis" and any(k.startswith("ssl") for k in query):
        raise RedisConfigError(
            f"TLS options in a plain redis:// URL {shown}; fix: use rediss:// for TLS"
        )
    ca = query.get("ssl_ca_certs") or os.environ.get("REDIS_CA_CERT", "").strip()
    if parts.scheme == "rediss" and ca:
        if not Path(ca).is_file():
            raise RedisConfigError(
                f"TLS CA file {ca} not found (for {shown}); fix: point ssl_ca_certs= in the URL "
                "or REDIS_CA_CERT at a PEM file"
            )
        kwargs["ssl_ca_certs"] = ca
    return kwargs


def keepalive_options() -> dict[int, int]:
    """TCP keepalive probes after 30 s idle, every 5 s, 3 of them; and (Linux) a 30 s bound
    on unacknowledged data: a connection to a vanished host (a partition, not a restart)
    fails within about a minute instead of hanging for RQ's 415 s socket timeout, so a
    lease renewal notices in time to fence."""
    wanted = {"TCP_KEEPIDLE": 30, "TCP_KEEPINTVL": 5, "TCP_KEEPCNT": 3, "TCP_USER_TIMEOUT": 30_000}
    return {getattr(socket, n): v for n, v in wanted.items() if hasattr(socket, n)}


def _check(settings: RedisSettings, kwargs: dict) -> None:
    """PING once, without retries, and turn a failure into one clear line."""
    probe = redis.Redis.from_url(settings.url, **{**kwargs, "retry": Retry(NoBackoff(), 0)})
    try:
        probe.ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        raise RedisConfigError(_describe(exc, settings)) from None
    finally:
        probe.close()


def _describe(exc: BaseException, settings: RedisSettings) -> str:
    """One line for a failed PING: the problem, the redacted URL, and the fix."""
    shown = settings.redacted_url
    reason = _reason(exc, settings.url)
    low = reason.lower()
    tls_fix = (
        "for TLS give the CA with ?ssl_ca_certs=/path/ca.pem in the URL or REDIS_CA_CERT "
        "(ssl_cert_reqs=none skips the check); for a plain server use redis://"
    )
    if isinstance(exc, redis.AuthenticationError) or _is_auth(low):
        # redis-py's handshake (HELLO) meets a password-protected server as NOAUTH does
        missing = ("noauth", "authentication required", "called with the client already auth")
        if any(m in low for m in missing):
            return f"Redis at {shown} requires a password ({reason}); fix: {_auth_fix()}"
        return f"Redis at {shown} rejected the credentials ({reason}); fix: {_auth_fix()}"
    if isinstance(exc, redis.TimeoutError | TimeoutError):
        return (
            f"timed out after {settings.socket_timeout_s:g}s connecting to Redis at {shown} "
            f"({reason}); fix: check the host, port and firewall, and rediss:// (TLS) vs "
            f"redis://, then {URL_FIX}"
        )
    if "ssl" in low or "certificate" in low or "tls" in low:
        return f"TLS handshake with Redis at {shown} failed ({reason}); fix: {tls_fix}"
    if (
        "name or service not known" in low
        or "nodename nor servname" in low
        or ("name resolution" in low)
    ):
        return (
            f"cannot resolve the host of Redis URL {shown} ({reason}); fix: check the host "
            f"name and {URL_FIX}"
        )
    if "closed by server" in low or "reset by peer" in low or "broken pipe" in low:
        return (
            f"Redis at {shown} closed the connection ({reason}); fix: if the server uses TLS "
            f"use rediss:// instead of redis://, then {URL_FIX}"
        )
    if isinstance(exc, redis.ConnectionError | OSError):
        return f"cannot reach Redis at {shown} ({reason}); fix: start Redis or {URL_FIX}"
    return f"Redis at {shown} failed: {reason}; fix: check the server and {URL_FIX}"


def _is_auth(low: str) -> bool:
    words = ("wrongpass", "noauth", "invalid password", "invalid username-password")
    return any(w in low for w in words) or "without any password configured" in low


def _auth_fix() -> str:
    return f"put the right password in the URL (redis://:PASSWORD@host:port/0) and {URL_FIX}"


def _reason(exc: BaseException, url: str) -> str:
    """The short cause of `exc` on one line, with no secret."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = _REDIS_PY_PREFIX.sub("", text).rstrip(".")
    return redact(text, url)
