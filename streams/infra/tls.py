"""A private CA and PEM certificates for the local stack's secure mode (`infra up --secure`).

Kafka (PEM key stores) and Elasticsearch (``xpack.security.http.ssl`` with PEM) both take what
this writes; clients trust ``ca.pem`` through ``kafka.ssl_cafile`` / ``elastic.ca_certs``. The
CA and certificates are made once per stack home and reused; a certificate that names other
hosts than asked for, or is within a day of expiring, is made again. Keys are written 0600 by
rename (``safefs.write_file``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from streams.infra import safefs

VALID_DAYS = 825


@dataclass(frozen=True)
class CertPaths:
    ca: Path  # the CA certificate (PEM), what clients trust
    cert: Path  # the server certificate chain (PEM)
    key: Path  # the server key (PEM, PKCS#8, unencrypted)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "newsflow local stack"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _fresh(path: Path) -> x509.Certificate | None:
    if not path.is_file():
        return None
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError:
        return None
    if cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < dt.timedelta(days=1):
        return None
    return cert


def ensure_ca(directory: Path) -> tuple[Path, Path]:
    """The stack's CA (certificate, key) under ``directory``, created on first use."""
    safefs.own_dir(directory)
    cert_path, key_path = directory / "ca.pem", directory / "ca-key.pem"
    if _fresh(cert_path) is not None and key_path.is_file():
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("newsflow local CA"))
        .issuer_name(_name("newsflow local CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    safefs.write_file(key_path, _key_pem(key).decode(), mode=0o600)
    safefs.write_file(cert_path, cert.public_bytes(serialization.Encoding.PEM).decode())
    return cert_path, key_path


def _names_of(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in san.get_values_for_type(x509.DNSName)} | {
        str(v) for v in san.get_values_for_type(x509.IPAddress)
    }


def ensure_server_cert(directory: Path, name: str, hosts: list[str]) -> CertPaths:
    """A server certificate ``<name>.pem``/``<name>-key.pem`` for ``hosts`` (DNS names or IPs),
    signed by the stack's CA. Reused while it names the same hosts and is not about to expire."""
    ca_cert_path, ca_key_path = ensure_ca(directory)
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}-key.pem"
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    existing = _fresh(cert_path)
    if (
        existing is not None
        and key_path.is_file()
        and existing.issuer == ca_cert.subject
        and _names_of(existing) == set(hosts)
    ):
        return CertPaths(ca_cert_path, cert_path, key_path)
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    safefs.write_file(key_path, _key_pem(key).decode(), mode=0o600)
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca_cert_path.read_bytes()
    safefs.write_file(cert_path, chain.decode())
    return CertPaths(ca_cert_path, cert_path, key_path)
