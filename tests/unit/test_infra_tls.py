"""The local stack's CA and server certificates: a real TLS handshake trusts them."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

from cryptography import x509

from streams.infra import tls


def test_server_cert_is_signed_by_the_ca_and_reused(tmp_path: Path) -> None:
    paths = tls.ensure_server_cert(tmp_path / "tls", "kafka", ["127.0.0.1", "localhost"])
    first = paths.cert.read_bytes()
    assert (paths.key.stat().st_mode & 0o777) == 0o600
    cert = x509.load_pem_x509_certificate(first)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(paths.ca.read_bytes()))
    assert (
        tls.ensure_server_cert(
            tmp_path / "tls", "kafka", ["localhost", "127.0.0.1"]
        ).cert.read_bytes()
        == first
    )
    # other hosts: a new certificate
    assert (
        tls.ensure_server_cert(tmp_path / "tls", "kafka", ["127.0.0.2"]).cert.read_bytes() != first
    )


def test_a_handshake_verifies_against_the_ca(tmp_path: Path) -> None:
    paths = tls.ensure_server_cert(tmp_path / "tls", "es", ["127.0.0.1"])
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(paths.cert, paths.key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls_conn:
            tls_conn.sendall(b"ok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(paths.ca))
    raw = socket.create_connection(("127.0.0.1", port))
    with client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
        assert conn.recv(2) == b"ok"
    thread.join(5)
    listener.close()
    # a client that trusts only the system CAs refuses the same server
    other = tls.ensure_server_cert(tmp_path / "other", "es", ["127.0.0.1"])
    assert other.ca.read_bytes() != paths.ca.read_bytes()
