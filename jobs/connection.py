"""Which Redis a command talks to, and a client for it.

`--redis-url`, else $REDIS_URL, else the embedded server under the storage root
(jobs.embedded); the URL itself is parsed and checked by jobs.settings.
"""

from __future__ import annotations

import os
from pathlib import Path

import redis

from factory.layout import resolve_home
from jobs.embedded import embedded_url
from jobs.settings import RedisSettings


def resolve_redis_url(url: str | None, home: Path) -> tuple[str, bool]:
    """(url, embedded?): `url` if given, else $REDIS_URL, else the embedded server of `home`."""
    if url:
        return url, False
    env = os.environ.get("REDIS_URL", "").strip()
    if env:
        return env, False
    return embedded_url(Path(home)), True


def connect(
    url: str | None = None, home: Path | None = None, *, check: bool = True, name: str | None = None
) -> redis.Redis:
    """A Redis client for `url` (else $REDIS_URL, else the embedded server of `home`);
    `name` labels its connections (CLIENT LIST)."""
    resolved, _ = resolve_redis_url(url, resolve_home(None) if home is None else home)
    return RedisSettings(resolved).client(check=check, name=name)
