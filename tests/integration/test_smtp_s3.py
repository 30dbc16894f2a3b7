"""instrument_smtp and instrument_boto3 against real servers started here.

SMTP: aiosmtpd (accepting, refusing a recipient, refusing a login) driven by smtplib
and aiosmtplib. S3: moto in server mode, which speaks the S3 HTTP API, driven by real
boto3 clients.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import boto3
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from moto.server import ThreadedMotoServer
from prometheus_client import REGISTRY

import lightkeeper
from lightkeeper import catalogue
from lightkeeper.sdk.integrations.s3 import uninstrument_boto3
from lightkeeper.sdk.integrations.smtp import uninstrument_smtp
from tests.support import services

pytestmark = pytest.mark.integration


def _calls(dependency: str, operation: str, outcome: str) -> float:
    labels = {"dependency": dependency, "operation": operation, "outcome": outcome}
    return REGISTRY.get_sample_value(catalogue.DEPENDENCY_CALLS.name, labels) or 0.0


class _Handler:
    def __init__(self) -> None:
        self.delivered: list[bytes] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.delivered.append(envelope.content)
        return "250 Message accepted"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    return AuthResult(success=getattr(data, "password", b"") == b"right", handled=False)


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, _Handler]]:
    handler = _Handler()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=services.free_port(),
        authenticator=_authenticate,
        auth_require_tls=False,
    )
    controller.start()
    lightkeeper.instrument_smtp()
    try:
        yield controller.port, handler
    finally:
        uninstrument_smtp()
        controller.stop()


def _message(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "app@example.test"
    message["To"] = to
    message["Subject"] = "Your invite"
    message.set_content("Welcome")
    return message


def test_smtplib_sends_are_counted_once_per_message(smtp_server: tuple[int, _Handler]) -> None:
    port, handler = smtp_server
    before_send, before_connect = _calls("email", "send", "success"), _calls("email", "connect", "success")

    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.send_message(_message("alice@example.test"))  # goes through sendmail: one call

    assert len(handler.delivered) == 1
    assert _calls("email", "send", "success") - before_send == 1
    assert _calls("email", "connect", "success") - before_connect == 1


def test_a_refused_recipient_and_a_refused_login_are_classified(smtp_server: tuple[int, _Handler]) -> None:
    port, _ = smtp_server
    before_refused, before_auth = _calls("email", "send", "client_error"), _calls("email", "login", "auth")

    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.send_message(_message("nobody@example.test"))
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("app", "wrong")

    assert _calls("email", "send", "client_error") - before_refused == 1
    assert _calls("email", "login", "auth") - before_auth == 1


def test_a_closed_port_is_a_connection_failure(smtp_server: tuple[int, _Handler]) -> None:
    before = _calls("email", "connect", "connection")
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP("127.0.0.1", services.closed_port(), timeout=5)
    assert _calls("email", "connect", "connection") - before == 1


async def test_aiosmtplib_sends_are_counted(smtp_server: tuple[int, _Handler]) -> None:
    port, handler = smtp_server
    before_ok, before_bad = _calls("email", "send", "success"), _calls("email", "send", "client_error")

    await aiosmtplib.send(_message("bob@example.test"), hostname="127.0.0.1", port=port, timeout=5)
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await aiosmtplib.send(_message("nobody@example.test"), hostname="127.0.0.1", port=port, timeout=5)

    assert len(handler.delivered) == 1
    assert _calls("email", "send", "success") - before_ok == 1
    assert _calls("email", "send", "client_error") - before_bad == 1


def test_uninstrument_stops_recording(smtp_server: tuple[int, _Handler]) -> None:
    port, _ = smtp_server
    uninstrument_smtp()
    assert not hasattr(smtplib.SMTP.sendmail, "__lightkeeper_original__")
    before = _calls("email", "send", "success")
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.send_message(_message("alice@example.test"))
    assert _calls("email", "send", "success") == before


# --- S3 --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _session() -> boto3.Session:
    return boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")


def _client(session: boto3.Session, endpoint: str) -> Any:
    config = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5)
    return session.client("s3", endpoint_url=endpoint, config=config)


def test_s3_operations_of_an_instrumented_session(s3_endpoint: str) -> None:
    session = _session()
    lightkeeper.instrument_boto3(session)
    lightkeeper.instrument_boto3(session)  # idempotent: still one count per call
    s3 = _client(session, s3_endpoint)
    before = {op: _calls("s3", op, "success") for op in ("CreateBucket", "PutObject", "GetObject")}
    before_missing = _calls("s3", "GetObject", "client_error")

    s3.create_bucket(Bucket="uploads")
    s3.put_object(Bucket="uploads", Key="avatars/4711.png", Body=b"png")
    assert s3.get_object(Bucket="uploads", Key="avatars/4711.png")["Body"].read() == b"png"
    with pytest.raises(ClientError, match="NoSuchKey"):
        s3.get_object(Bucket="uploads", Key="missing")

    for op, value in before.items():
        assert _calls("s3", op, "success") - value == 1, op
    assert _calls("s3", "GetObject", "client_error") - before_missing == 1
    assert not [
        s.labels
        for m in REGISTRY.collect()
        for s in m.samples
        if "4711" in "".join(s.labels.values()) or "uploads" in "".join(s.labels.values())
    ], "bucket names and keys must never become labels"


async def test_aioboto3_clients_emit_the_same_events_and_are_counted(s3_endpoint: str) -> None:
    """aiobotocore's emitter runs botocore's handlers too: the same wrapper covers async clients."""
    import aioboto3

    session = aioboto3.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    lightkeeper.instrument_boto3(session)
    config = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5)
    before = {op: _calls("s3", op, "success") for op in ("CreateBucket", "PutObject", "GetObject")}
    before_missing = _calls("s3", "GetObject", "client_error")
    async with session.client("s3", endpoint_url=s3_endpoint, config=config) as s3:
        await s3.create_bucket(Bucket="async-uploads")
        await s3.put_object(Bucket="async-uploads", Key="avatars/4712.png", Body=b"png")
        got = await s3.get_object(Bucket="async-uploads", Key="avatars/4712.png")
        assert await got["Body"].read() == b"png"
        with pytest.raises(ClientError, match="NoSuchKey"):
            await s3.get_object(Bucket="async-uploads", Key="missing")
    for op, value in before.items():
        assert _calls("s3", op, "success") - value == 1, op
    assert _calls("s3", "GetObject", "client_error") - before_missing == 1


def test_s3_on_a_closed_port_is_a_connection_failure() -> None:
    session = _session()
    s3 = _client(session, f"http://127.0.0.1:{services.closed_port()}")
    lightkeeper.instrument_boto3(s3)
    before = _calls("s3", "ListBuckets", "connection")

    with pytest.raises(EndpointConnectionError):
        s3.list_buckets()

    assert _calls("s3", "ListBuckets", "connection") - before == 1


def test_uninstrumented_clients_record_nothing(s3_endpoint: str) -> None:
    session = _session()
    s3 = _client(session, s3_endpoint)
    lightkeeper.instrument_boto3(s3)
    uninstrument_boto3(s3)
    before = _calls("s3", "ListBuckets", "success")
    s3.list_buckets()
    assert _calls("s3", "ListBuckets", "success") == before


def test_instrument_boto3_refuses_what_is_not_a_session_or_client() -> None:
    with pytest.raises(TypeError, match="session or client"):
        lightkeeper.instrument_boto3(object())
