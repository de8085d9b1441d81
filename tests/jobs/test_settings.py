"""Redis settings: secrets never shown, one-line errors with a fix, TLS, the embedded server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from jobs.connection import connect, resolve_redis_url
from jobs.embedded import embedded_url, stop_embedded
from jobs.settings import RedisConfigError, RedisSettings, redact
from tests.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-P@ss/word"  # needs %-encoding in a URL
QUOTED = "s3cr3t-P%40ss%2Fword"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with RedisServer(tmp_path_factory.mktemp("redis"), password=SECRET) as srv:
        yield srv


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    with RedisServer(tmp_path_factory.mktemp("tls"), password=SECRET, tls=True) as srv:
        yield srv


def error_of(url: str, **kwargs) -> str:
    with pytest.raises(RedisConfigError) as info:
        connect(url, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "fix:" in message, message
    for secret in (SECRET, QUOTED, "pw-xyz"):
        assert secret not in message, message
    return message


@pytest.mark.parametrize(
    "url",
    [
        f"rediss://default:{QUOTED}@redis.example.com:6380/2?ssl_cert_reqs=required",
        f"redis://:{QUOTED}@127.0.0.1:6379/0",
        f"redis://{QUOTED}@host",
        f"redis://host:1/0?password={QUOTED}",
    ],
)
def test_the_password_is_never_shown(url):
    settings = RedisSettings(url)
    for text in (settings.redacted_url, str(settings), repr(settings), f"{settings!r}"):
        assert SECRET not in text and QUOTED not in text, text
        assert "****" in text
    assert settings.url == url


def test_redacted_url_keeps_what_helps():
    shown = RedisSettings(f"rediss://default:{QUOTED}@redis.example.com:6380/2").redacted_url
    assert shown == "rediss://default:****@redis.example.com:6380/2"
    assert RedisSettings("redis://localhost").redacted_url == "redis://localhost:6379/0"


def test_redact_scrubs_an_exception_text():
    url = f"rediss://default:{QUOTED}@redis.example.com:6380/0"
    text = (
        f"AuthenticationError: bad password {SECRET!r} ({QUOTED}) for {url}; "
        "also see redis://bob:hunter2@other:6379"
    )
    clean = redact(text, url)
    for secret in (SECRET, QUOTED, "hunter2"):
        assert secret not in clean
    assert "redis.example.com:6380" in clean and "bob:****@other" in clean


def test_closed_port_names_the_address_and_the_fix():
    port = free_port()
    message = error_of(f"redis://:pw-xyz@127.0.0.1:{port}/0")
    assert f"127.0.0.1:{port}" in message
    assert "Connection refused" in message and "REDIS_URL" in message


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://:pw-xyz@localhost:6379/0", "scheme"),
        ("redis://:pw-xyz@localhost:99999/0", "invalid Redis URL"),
        ("redis://:pw-xyz@localhost:6379/0?ssl_cert_reqs=none", "rediss://"),
        ("redis://:pw-xyz@no-such-host.invalid:6379/0", "cannot resolve"),
    ],
)
def test_bad_urls_are_one_clear_line(url, words):
    assert words in error_of(url)


def test_wrong_password_is_an_auth_error(server):
    message = error_of(server.url.replace(QUOTED, "pw-xyz"))
    assert "rejected the credentials" in message and f"127.0.0.1:{server.port}" in message


def test_missing_password_says_one_is_needed(server):
    message = error_of(f"redis://127.0.0.1:{server.port}/0")
    assert "requires a password" in message


def test_connect_with_the_right_password(server):
    client = connect(server.url)
    client.set("k", "v")
    assert client.get("k") == b"v"  # bytes: RQ needs decode_responses=False


def test_tls_works_over_rediss(tls_server):
    assert tls_server.url.startswith("rediss://")
    client = connect(tls_server.url)
    client.set("tls-key", "tls-value")
    assert client.get("tls-key") == b"tls-value"


def test_plain_redis_to_a_tls_port_says_use_rediss(tls_server):
    message = error_of(f"redis://:{QUOTED}@127.0.0.1:{tls_server.port}/0")
    assert "rediss://" in message and f"127.0.0.1:{tls_server.port}" in message


def test_tls_without_the_ca_fails_clearly_and_redis_ca_cert_fixes_it(tls_server, monkeypatch):
    bare = f"rediss://:{QUOTED}@127.0.0.1:{tls_server.port}/0"
    monkeypatch.delenv("REDIS_CA_CERT", raising=False)
    message = error_of(bare)
    assert "TLS" in message and "REDIS_CA_CERT" in message
    monkeypatch.setenv("REDIS_CA_CERT", str(tls_server.ca_cert))
    assert connect(bare).ping()
    monkeypatch.setenv("REDIS_CA_CERT", "/no/such/ca.pem")
    assert "/no/such/ca.pem" in error_of(bare)


def test_the_url_comes_from_the_argument_then_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("REDIS_URL", "redis://env-host:6379/0")
    assert resolve_redis_url("redis://arg-host:1/0", tmp_path) == ("redis://arg-host:1/0", False)
    assert resolve_redis_url(None, tmp_path) == ("redis://env-host:6379/0", False)


def _embedded_in_subprocess(home: Path) -> subprocess.Popen:
    code = "import sys; from jobs.embedded import embedded_url; print(embedded_url(sys.argv[1]))"
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    return subprocess.Popen(
        [sys.executable, "-c", code, str(home)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_embedded_server_is_shared_restarted_and_keeps_its_data(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.delenv("REDIS_URL", raising=False)
    try:
        procs = [_embedded_in_subprocess(home) for _ in range(2)]  # racing for the lock
        outs = [p.communicate(timeout=60) for p in procs]
        assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
        urls = {out.strip() for out, _ in outs}
        assert len(urls) == 1, urls
        url = urls.pop()
        state_file = home / "redis" / "embedded.json"
        assert state_file.stat().st_mode & 0o777 == 0o600
        assert resolve_redis_url(None, home) == (url, True)

        client = connect(home=home)
        client.set("kept", "yes")
        assert stop_embedded(home) is True
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0)).ping()

        assert connect(embedded_url(home)).get("kept") == b"yes"  # started again, AOF replayed
        connect(home=home).set("after-kill", "yes")
        os.kill(json.loads(state_file.read_text())["pid"], signal.SIGKILL)  # a crashed server
        assert connect(home=home).get("after-kill") == b"yes"
    finally:
        stop_embedded(home)
    assert stop_embedded(home) is False


@pytest.mark.parametrize(
    "url",
    [
        "default:S3cr3t@127.0.0.1:16391",
        ":S3cr3t@127.0.0.1:16391",
        "S3cr3t@127.0.0.1:16391",
        "redis:S3cr3t@127.0.0.1:16391",
    ],
)
def test_a_url_without_a_scheme_is_refused_without_its_password(url):
    message = error_of(url)
    assert "S3cr3t" not in message and "has no scheme" in message, message
    assert "****@127.0.0.1:16391" in message
    assert "S3cr3t" not in RedisSettings(url).redacted_url
    assert "S3cr3t" not in redact(f"connecting to {url} failed", url)


def test_a_password_holding_a_slash_or_an_at_sign_is_masked_whole():
    url = "redis://:pa/ss@wo@rd@127.0.0.1:6379/0"
    assert RedisSettings(url).redacted_url == "redis://:****@127.0.0.1:6379/0"
