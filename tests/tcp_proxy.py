"""A TCP proxy that drops connections the way hosted Redis and flaky networks do.

    with TcpProxy(server.port, idle_cut_s=2.0) as proxy:
        client = redis.Redis.from_url(proxy.url(server.url))
        proxy.cut_all()                      # every open connection, now
        proxy.refuse_for(3.0)                # new connections are closed at once for 3 s
        proxy.on_request(b"EVALSHA", lose_reply=True)  # the next one runs, its reply is lost

The model: the proxy listens on a free 127.0.0.1 port and relays each client connection
to its own upstream connection, byte for byte, one thread per direction. A connection
is "idle" when no byte has passed either way for `idle_cut_s`; the proxy then closes
both sides (the client reads EOF, as from Upstash or Redis Cloud closing an idle
connection, or a NAT forgetting it). `cut_all` does the same to every connection at
once (a failover, a network blip). While refusing, a new client connection is accepted
and closed before anything is relayed (a host whose server is down). A trigger
(`on_request`) fires once, on the first client chunk that contains its bytes: it may run
a callback first (e.g. stop the Redis server), then either drop the chunk and cut the
connection (the command never reaches Redis) or relay it and cut the connection before
the reply comes back (the command ran, the client cannot know). Chunks are what one
recv() returns: fine for Redis commands of a test, which are small.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

__all__ = ["TcpProxy"]


@dataclass
class _Trigger:
    pattern: bytes
    callback: Callable[[], None] | None
    lose_reply: bool
    fired: threading.Event = field(default_factory=threading.Event)


class _Pair:
    """One client connection and its upstream connection."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client, self.upstream = client, upstream
        self.last_active = time.monotonic()
        self.lose_reply = False
        self._closed = threading.Event()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> bool:
        if self._closed.is_set():
            return False
        self._closed.set()
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        return True


class TcpProxy:
    """Relay 127.0.0.1:<port> to upstream, cutting connections as the docstring says."""

    def __init__(
        self,
        upstream_port: int,
        upstream_host: str = "127.0.0.1",
        idle_cut_s: float | None = None,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.idle_cut_s = idle_cut_s
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._pairs: list[_Pair] = []
        self._triggers: list[_Trigger] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._refuse_until = 0.0
        self.accepted = 0  # client connections relayed
        self.cuts = 0  # connections the proxy closed (idle, cut_all, triggers, refusals)

    # -- the life cycle -----------------------------------------------------------------
    def start(self) -> TcpProxy:
        for target in (self._accept_forever, self._cut_idle_forever):
            threading.Thread(target=target, daemon=True, name=f"proxy-{target.__name__}").start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self.cut_all(count=False)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def url(self, upstream_url: str) -> str:
        """`upstream_url` (redis://[auth@]host:port/db) with the proxy as its host and port."""
        parts = urlsplit(upstream_url)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@127.0.0.1:{self.port}" if auth else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    # -- faults on demand ---------------------------------------------------------------
    def cut_all(self, count: bool = True) -> int:
        """Close every open connection; how many there were."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        closed = sum(pair.close() for pair in pairs)
        if count:
            self.cuts += closed
        return closed

    def refuse_for(self, seconds: float) -> None:
        """Close new connections at once for `seconds` (open ones are left alone)."""
        self._refuse_until = time.monotonic() + seconds

    def on_request(
        self, pattern: bytes, callback: Callable[[], None] | None = None, lose_reply: bool = False
    ) -> threading.Event:
        """Once, on the first client chunk holding `pattern`: run `callback`, then cut that
        connection, before relaying the chunk or (`lose_reply`) after relaying it, so
        that the command runs but its reply is lost. The returned event is set when it fired."""
        trigger = _Trigger(pattern, callback, lose_reply)
        with self._lock:
            self._triggers.append(trigger)
        return trigger.fired

    @property
    def open_connections(self) -> int:
        with self._lock:
            return sum(not p.closed for p in self._pairs)

    # -- the relay ----------------------------------------------------------------------
    def _accept_forever(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # the listener was closed: the proxy stops
                return
            if time.monotonic() < self._refuse_until:
                client.close()
                self.cuts += 1
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:  # the server is down: the client sees its connection closed
                client.close()
                continue
            upstream.settimeout(None)
            pair = _Pair(client, upstream)
            with self._lock:
                self._pairs = [p for p in self._pairs if not p.closed] + [pair]
            self.accepted += 1
            for src, dst, upward in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pump, args=(pair, src, dst, upward), daemon=True
                ).start()

    def _pump(self, pair: _Pair, src: socket.socket, dst: socket.socket, upward: bool) -> None:
        while not pair.closed:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                pair.close()
                return
            pair.last_active = time.monotonic()
            if upward and not self._relay_request(pair, data):
                return
            if not upward and pair.lose_reply:
                self._cut(pair)
                return
            try:
                dst.sendall(data)
            except OSError:
                pair.close()
                return

    def _relay_request(self, pair: _Pair, data: bytes) -> bool:
        """Apply the first trigger that matches; False when the chunk must not be relayed."""
        with self._lock:
            trigger = next(
                (t for t in self._triggers if not t.fired.is_set() and t.pattern in data), None
            )
            if trigger is not None:
                trigger.fired.set()
        if trigger is None:
            return True
        if trigger.callback is not None:
            trigger.callback()
        if trigger.lose_reply:
            pair.lose_reply = True
            return True
        self._cut(pair)
        return False

    def _cut(self, pair: _Pair) -> None:
        if pair.close():
            self.cuts += 1

    def _cut_idle_forever(self) -> None:
        while not self._stop.wait(0.1):
            if self.idle_cut_s is None:
                continue
            now = time.monotonic()
            with self._lock:
                idle = [p for p in self._pairs if now - p.last_active > self.idle_cut_s]
            for pair in idle:
                self._cut(pair)
