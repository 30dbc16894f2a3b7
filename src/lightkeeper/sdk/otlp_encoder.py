"""OTLP/protobuf encoding of finished spans, redacting on the way, for the export thread.

Why not opentelemetry-exporter-otlp's encoder: it builds one protobuf message object
per span, attribute and value, which at 100 % sampling costs more than creating the
span. `bench/otlp_encoder.py` times both on the same spans and prints the figures
(µs per span and the ratio); re-run it rather than trusting a number written here.
Here the wire format is written directly, and the encoded bytes of each (key, value) attribute
pair are cached: a service repeats the same routes, methods, status codes and
statement texts, so most attributes cost one dict lookup, redaction included. The
output is the same ExportTraceServiceRequest message (tests decode it with
opentelemetry-proto); transport, retries and timeouts stay the official exporter's.

Field numbers: opentelemetry/proto/trace/v1/trace.proto, common/v1/common.proto,
resource/v1/resource.proto, collector/trace/v1/trace_service.proto.
"""

from __future__ import annotations

import struct
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from lightkeeper.sdk import redact

__all__ = ["encode_spans"]

_MAX_CACHED = 8192
_pack_fixed64 = struct.Struct("<Q").pack
_pack_fixed32 = struct.Struct("<I").pack
_pack_double = struct.Struct("<d").pack

# The SDK's SpanKind (INTERNAL=0 ... CONSUMER=4) -> the proto's (UNSPECIFIED=0, INTERNAL=1 ...).
_KIND = {0: 1, 1: 2, 2: 3, 3: 4, 4: 5}


_SMALL = [bytes((i,)) for i in range(128)]


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _signed_varint(value: int) -> bytes:
    return _varint(value if value >= 0 else value + (1 << 64))


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    size = len(payload)
    if number < 16 and size < 0x80:
        return _SMALL[number << 3 | 2] + _SMALL[size] + payload
    return _varint(number << 3 | 2) + _varint(size) + payload


def _text(number: int, text: str) -> bytes:
    return _field(number, text.encode("utf-8", "surrogatepass"))


def _any_value(value: Any) -> bytes:
    cls = value.__class__
    if cls is str:
        return _text(1, value)
    if cls is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if cls is int:
        return b"\x18" + _signed_varint(value)
    if cls is float:
        return b"\x21" + _pack_double(value)
    if isinstance(value, bytes):
        return _field(7, value)
    if isinstance(value, list | tuple):
        return _field(5, b"".join(_field(1, _any_value(item)) for item in value))
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + _signed_varint(int(value))
    if isinstance(value, float):
        return b"\x21" + _pack_double(float(value))
    return _text(1, str(value))


# --------------------------------------------------------------- redaction + cache

_SQL_KEYS = frozenset({"db.statement", "db.query.text"})
_URL_KEYS = frozenset({"url.full", "http.url", "url.query", "http.target"})
_HEADER_PREFIXES = ("http.request.header.", "http.response.header.")
_CACHEABLE = frozenset({str, int, bool, float, tuple})  # span attribute tuples hold scalars


def redact_attribute(key: str, value: Any, mask_sql: Callable[[str], str]) -> Any:
    """The value of one span attribute as it may leave the process."""
    name = key.rsplit(".", 1)[-1] if key.startswith(_HEADER_PREFIXES) else key
    if redact.is_sensitive_key(name):
        return redact.MASK
    if value.__class__ is str:
        new = redact.redact_text(value)
        if key in _SQL_KEYS and new is value:
            return mask_sql(value)
        if key in _URL_KEYS:
            return redact.redact_url(new)
        return new
    if isinstance(value, tuple | list):
        return redact.redact_value(value)
    return value


_encoders: weakref.WeakSet[Encoder] = weakref.WeakSet()


def _forget_all() -> None:
    for encoder in list(_encoders):
        encoder.forget()


redact.on_reconfigure(_forget_all)


class Encoder:
    """Encodes batches of ReadableSpan; one per exporter (its caches live with it)."""

    def __init__(self, mask_sql: Callable[[str], str]) -> None:
        self._mask_sql = mask_sql
        self._pairs: dict[tuple[int, str, Any], bytes] = {}
        self._texts: dict[str, bytes] = {}
        self._resources: dict[int, tuple[Any, bytes, bytes]] = {}
        self._scopes: dict[int, tuple[Any, bytes, bytes]] = {}
        _encoders.add(self)

    def forget(self) -> None:
        """Drop every encoded piece: they were redacted under rules that changed."""
        self._pairs.clear()
        self._texts.clear()
        self._resources.clear()
        self._scopes.clear()

    # -- pieces ---------------------------------------------------------------

    def _encode_attribute(self, number: int, key: str, value: Any) -> bytes:
        """The whole repeated-field entry: tag, length, KeyValue(key, redacted value)."""
        encoded = _field(
            number, _text(1, key) + _field(2, _any_value(redact_attribute(key, value, self._mask_sql)))
        )
        if value.__class__ in _CACHEABLE and (value.__class__ is not str or len(value) <= 512):
            if len(self._pairs) >= _MAX_CACHED:
                self._pairs.clear()
            self._pairs[(number, key, value)] = encoded
        return encoded

    def _attributes(self, number: int, attributes: Any) -> bytes:
        if not attributes:
            return b""
        get = self._pairs.get
        miss = self._encode_attribute
        parts = []
        for key, value in attributes.items():
            try:
                found = get((number, key, value))
            except TypeError:  # an unhashable value (a list)
                found = None
            parts.append(found if found is not None else miss(number, key, value))
        return b"".join(parts)

    def _span_name(self, text: str) -> bytes:
        found = self._texts.get(text)
        if found is None:
            found = _text(5, redact.redact_text(text))
            if len(text) <= 512:
                if len(self._texts) >= _MAX_CACHED:
                    self._texts.clear()
                self._texts[text] = found
        return found

    def _resource(self, resource: Any) -> bytes:
        cached = self._resources.get(id(resource))
        if cached is None or cached[0] is not resource:
            body = self._attributes(1, resource.attributes) if resource is not None else b""
            schema = getattr(resource, "schema_url", "") or ""
            cached = (resource, _field(1, body), _text(3, schema) if schema else b"")
            self._resources[id(resource)] = cached
        return cached[1]

    def _resource_schema(self, resource: Any) -> bytes:
        self._resource(resource)
        return self._resources[id(resource)][2]

    def _scope(self, scope: Any) -> bytes:
        cached = self._scopes.get(id(scope))
        if cached is None or cached[0] is not scope:
            body = b""
            if scope is not None:
                body = _text(1, scope.name or "")
                if scope.version:
                    body += _text(2, scope.version)
                body += self._attributes(3, getattr(scope, "attributes", None))
            schema = getattr(scope, "schema_url", "") or ""
            cached = (scope, _field(1, body), _text(3, schema) if schema else b"")
            self._scopes[id(scope)] = cached
        return cached[1]

    def _span(self, span: Any) -> bytes:
        context = span.context
        parent = span.parent
        out = [
            b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),
            b"\x12\x08" + context.span_id.to_bytes(8, "big"),
        ]
        trace_state = context.trace_state
        if trace_state:
            out.append(_text(3, ",".join(f"{k}={v}" for k, v in trace_state.items())))
        if parent is not None:
            out.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
        out.append(self._span_name(span.name))
        out.append(b"\x30" + _varint(_KIND.get(span.kind.value, 0)))
        out.append(b"\x39" + _pack_fixed64(span.start_time or 0))
        out.append(b"\x41" + _pack_fixed64(span.end_time or 0))
        out.append(self._attributes(9, span.attributes))
        if span.dropped_attributes:
            out.append(b"\x50" + _varint(span.dropped_attributes))
        for event in span.events:
            body = b"\x09" + _pack_fixed64(event.timestamp) + _text(2, redact.redact_text(event.name))
            body += self._attributes(3, event.attributes)
            out.append(_field(11, body))
        if span.dropped_events:
            out.append(b"\x60" + _varint(span.dropped_events))
        for link in span.links:
            body = b"\x0a\x10" + link.context.trace_id.to_bytes(16, "big")
            body += b"\x12\x08" + link.context.span_id.to_bytes(8, "big")
            body += self._attributes(4, link.attributes)
            if link.dropped_attributes:
                body += b"\x28" + _varint(link.dropped_attributes)
            body += b"\x35" + _pack_fixed32(0x300 if link.context.is_remote else 0x100)
            out.append(_field(13, body))
        status = span.status
        code = status.status_code.value
        if code or status.description:
            body = _text(2, redact.redact_text(status.description)) if status.description else b""
            if code:
                body += b"\x18" + _varint(code)
            out.append(_field(15, body))
        else:
            out.append(b"\x7a\x00")  # an empty Status, as the official encoder writes it
        flags = 0x100  # SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
        if parent is not None and parent.is_remote:
            flags |= 0x200
        out.append(b"\x85\x01" + _pack_fixed32(flags))
        return _field(2, b"".join(out))

    # -- batch ----------------------------------------------------------------

    def encode(self, spans: Sequence[Any]) -> bytes:
        """ExportTraceServiceRequest bytes for `spans`, grouped by resource and scope."""
        groups: dict[tuple[int, int], tuple[Any, Any, list[bytes]]] = {}
        for span in spans:
            resource = span.resource
            scope = span.instrumentation_scope
            key = (id(resource), id(scope))
            group = groups.get(key)
            if group is None:
                group = groups[key] = (resource, scope, [])
            group[2].append(self._span(span))
        by_resource: dict[int, tuple[Any, list[bytes]]] = {}
        for resource, scope, encoded in groups.values():
            head = self._scope(scope)
            entry = by_resource.setdefault(id(resource), (resource, []))
            entry[1].append(_field(2, head + b"".join(encoded) + self._scopes[id(scope)][2]))
        out = []
        for resource, scopes in by_resource.values():
            body = self._resource(resource) + b"".join(scopes) + self._resource_schema(resource)
            out.append(_field(1, body))
        return b"".join(out)


def encode_spans(spans: Sequence[Any], mask_sql: Callable[[str], str] = lambda s: s) -> bytes:
    """One-off encoding (tests, tools); exporters keep an `Encoder` for its caches."""
    return Encoder(mask_sql).encode(spans)
