"""A TCP relay in front of the real Kafka broker that a test can cut and restore.

Kafka clients connect to the bootstrap address only to learn the brokers' advertised
addresses, then talk to those: a plain TCP relay would be bypassed after the first request.
So this relay reads the Kafka framing (4-byte size, then the request header: api key, version,
correlation id) and rewrites every Metadata response (api key 3) so that each broker is
advertised at the relay's own address (kafka-python's protocol classes decode and re-encode
it). Everything else passes through byte for byte. One relay port stands for one broker: the
shared local stack has one.

``cut()`` makes Kafka unreachable for the relay's clients without touching the shared broker:
open connections are reset, new ones are accepted and closed at once. ``restore()`` lets them
through again. Only the process pointed at the relay loses Kafka; every other test and the
shared broker keep going.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from kafka.protocol.metadata import MetadataResponse

METADATA = 3


def _read_exact(sock: socket.socket, n: int) -> bytes | None:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            return None
        out += chunk
    return bytes(out)


def _read_frame(sock: socket.socket) -> bytes | None:
    head = _read_exact(sock, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">i", head)
    return _read_exact(sock, size)


class KafkaRelay:
    def __init__(self, upstream: str, host: str = "127.0.0.1") -> None:
        up_host, _, up_port = upstream.rpartition(":")
        self.upstream = (up_host or "127.0.0.1", int(up_port))
        self._listener = socket.create_server((host, 0))
        self.host = host
        self.port = int(self._listener.getsockname()[1])
        self.down = False
        self.connections = 0  # accepted while up
        self.refused = 0  # connections closed at once while cut
        self.rewritten = 0  # Metadata responses rewritten
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> KafkaRelay:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self.cut()
        with suppress(OSError):
            self._listener.close()

    def cut(self) -> None:
        """Kafka unreachable: reset every open connection, refuse new ones."""
        with self._lock:
            self.down = True
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            with suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with suppress(OSError):
                sock.close()

    def restore(self) -> None:
        with self._lock:
            self.down = False

    # ------------------------------------------------------------------ plumbing

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                down = self.down
            if down:
                self.refused += 1
                with suppress(OSError):
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            self.connections += 1
            with self._lock:
                self._open |= {client, upstream}
            pending: dict[int, int] = {}  # correlation id -> Metadata version
            threading.Thread(
                target=self._requests, args=(client, upstream, pending), daemon=True
            ).start()
            threading.Thread(
                target=self._responses, args=(upstream, client, pending), daemon=True
            ).start()

    def _close(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._open -= set(sockets)
        for sock in sockets:
            with suppress(OSError):
                sock.close()

    def _requests(
        self, client: socket.socket, upstream: socket.socket, pending: dict[int, int]
    ) -> None:
        try:
            while True:
                frame = _read_frame(client)
                if frame is None:
                    break
                api_key, version, correlation = struct.unpack(">hhi", frame[:8])
                if api_key == METADATA:
                    pending[correlation] = version
                upstream.sendall(struct.pack(">i", len(frame)) + frame)
        except OSError:
            pass
        finally:
            self._close(client, upstream)

    def _responses(
        self, upstream: socket.socket, client: socket.socket, pending: dict[int, int]
    ) -> None:
        try:
            while True:
                frame = _read_frame(upstream)
                if frame is None:
                    break
                (correlation,) = struct.unpack(">i", frame[:4])
                version = pending.pop(correlation, None)
                if version is not None:
                    frame = self._rewrite(frame, version)
                client.sendall(struct.pack(">i", len(frame)) + frame)
        except OSError:
            pass
        finally:
            self._close(client, upstream)

    def _rewrite(self, frame: bytes, version: int) -> bytes:
        response = MetadataResponse.decode(frame, version=version, header=True)
        for broker in response.brokers:
            broker.host = self.host
            broker.port = self.port
        response._version = version  # its setter would touch the request-only header field
        self.rewritten += 1
        return bytes(response.encode(header=True))


@contextmanager
def kafka_relay(upstream: str) -> Iterator[KafkaRelay]:
    relay = KafkaRelay(upstream).start()
    try:
        yield relay
    finally:
        relay.stop()
