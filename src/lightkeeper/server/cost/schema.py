"""The ingest contract: one JSON object per `lightkeeper.sdk.llm.events.CostEvent`.

The SDK never imports the server, so the field names here and the dataclass's field
names are the contract (README.md lists them). Unknown fields are ignored so an older
server accepts a newer SDK; what the server stores is checked: bounded names, counts
that cannot be negative, and a `user_hash` that must look like a hash, because a user id
in clear (an e-mail above all) must never be stored.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

MAX_BATCH = 1000
_HASH = re.compile(r"^[0-9a-f]{16,64}$")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")

Name = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
Count = Annotated[int, Field(ge=0, le=10**12)]


def _aware_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("timestamp needs a time zone (the SDK sends UTC)")
    return moment.astimezone(UTC)


def _hashed(value: str | None) -> str | None:
    if value is None:
        return None
    if _EMAIL.search(value):
        raise ValueError("looks like an e-mail address: send the SDK's salted hash, never the user id")
    if not _HASH.match(value):
        raise ValueError("must be the SDK's salted hash (16 to 64 lowercase hex characters)")
    return value


class CostEventIn(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: Annotated[str, StringConstraints(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    timestamp: Annotated[datetime, AfterValidator(_aware_utc)]
    provider: Name
    model: Name
    operation: Name
    status: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    input_tokens: Count = 0
    output_tokens: Count = 0
    cache_read_tokens: Count = 0
    cache_write_tokens: Count = 0
    reasoning_tokens: Count = 0
    cost_usd: Annotated[float, Field(ge=0, le=1e6)] | None
    price_source: Annotated[str, StringConstraints(max_length=100)] = ""
    latency_seconds: Annotated[float, Field(ge=0, le=86_400)] = 0.0
    time_to_first_chunk_seconds: Annotated[float, Field(ge=0, le=86_400)] | None = None
    user_hash: Annotated[str | None, AfterValidator(_hashed)] = None
    workspace_id: Annotated[str, StringConstraints(max_length=200)] | None = None
    request_id: Annotated[str, StringConstraints(max_length=200)] | None = None
    prompt_hash: Annotated[str | None, AfterValidator(_hashed)] = None


class CostBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[CostEventIn] = Field(min_length=1, max_length=MAX_BATCH)
