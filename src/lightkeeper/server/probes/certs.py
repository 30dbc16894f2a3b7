"""Read a peer certificate's expiry; shared by the tls probe and the http probe's `tls_min_days`."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime

from cryptography import x509

from lightkeeper.server.probes.result import ProbeFailure


def expiry_seconds(der: bytes, now: datetime | None = None) -> float:
    """Seconds until the certificate's notAfter (negative once expired)."""
    cert = x509.load_der_x509_certificate(der)
    return (cert.not_valid_after_utc - (now or datetime.now(UTC))).total_seconds()


def peer_expiry(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> float:
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        raise ProbeFailure("the server sent no TLS certificate")
    return expiry_seconds(der)


def check_min_days(expiry: float, min_days: int) -> None:
    days = expiry / 86400
    if days < 0:
        raise ProbeFailure(f"certificate expired {-days:.0f} days ago")
    if days < min_days:
        raise ProbeFailure(f"certificate expires in {days:.0f} days, expected at least {min_days}")


def context(ca_file: str | None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ProbeFailure(f"cannot load ca_file {ca_file}: {exc.__class__.__name__}") from None
