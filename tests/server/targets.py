"""Local probe targets: an HTTP(S) server with one path per behaviour, and test certificates."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class _Handler(BaseHTTPRequestHandler):
    server: TargetServer

    def do_GET(self) -> None:
        self.server.seen_headers.append(dict(self.headers.items()))
        path = self.path.split("?")[0]
        if path == "/healthy":
            self._send(200, b"all ok")
        elif path == "/slow":
            time.sleep(0.6)
            self._send(200, b"ok, slowly")
        elif path == "/status/503":
            self._send(503, b"unavailable")
        elif path == "/wrong-body":
            self._send(200, b"maintenance page")
        elif path == "/json":
            self._send(
                200, json.dumps({"status": "degraded", "checks": [{"db": "ok"}]}).encode(), "application/json"
            )
        elif path == "/with-header":
            self._send(200, b"ok", extra={"X-Served-By": "node-1"})
        elif path == "/redirect":
            self._send(302, b"", extra={"Location": "/healthy"})
        elif path == "/flap":
            self.server.flap_count += 1
            self._send(200 if self.server.flap_count % 2 else 500, b"flap")
        elif path == "/echo-auth":
            self._send(401, b"denied")
        else:
            self._send(404, b"not found")

    def _send(
        self, status: int, body: bytes, ctype: str = "text/plain", extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class TargetServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.flap_count = 0
        self.seen_headers: list[dict[str, str]] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@contextlib.contextmanager
def serve(tls: ssl.SSLContext | None = None) -> Iterator[TargetServer]:
    server = TargetServer()
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- certificates ----------------------------------------------------------------------
@dataclass
class Cert:
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write(folder: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Cert:
    cert_file, key_file = folder / f"{stem}.pem", folder / f"{stem}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Cert(cert_file, key_file)


def make_ca(folder: Path) -> tuple[Cert, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("lightkeeper test CA"))
        .issuer_name(_name("lightkeeper test CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
    return _write(folder, "ca", cert, key), cert, key


def make_leaf(
    folder: Path,
    stem: str,
    *,
    valid_from: dt.datetime,
    valid_to: dt.datetime,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
) -> Cert:
    """A certificate for 127.0.0.1, signed by `issuer` or self-signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_name = issuer[0].subject if issuer else _name("127.0.0.1")
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()), critical=False
        )
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    return _write(folder, stem, cert, key)
