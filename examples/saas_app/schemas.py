"""Request and response bodies of the public API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from examples.saas_app.models import ContentStatus


def _as_utc(value: datetime) -> datetime:
    # SQLite hands timestamps back without their zone; the app only ever writes UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class LoginRequest(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=256)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class OrganizationCreate(BaseModel):
    name: str = Field(min_length=1, max_length=120)


class OrganizationOut(_Out):
    id: int
    name: str


class WorkspaceCreate(BaseModel):
    name: str = Field(min_length=1, max_length=120)


class WorkspaceOut(_Out):
    id: int
    organization_id: int
    name: str


class ItemCreate(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field("", max_length=100_000)


class ItemUpdate(BaseModel):
    title: str | None = Field(None, min_length=1, max_length=200)
    body: str | None = Field(None, max_length=100_000)
    status: ContentStatus | None = None


class ItemOut(_Out):
    id: int
    workspace_id: int
    author_id: int
    title: str
    body: str
    status: ContentStatus
    created_at: UtcDatetime
    updated_at: UtcDatetime


class CommentCreate(BaseModel):
    body: str = Field(min_length=1, max_length=10_000)


class CommentOut(_Out):
    id: int
    item_id: int
    author_id: int
    body: str
    created_at: UtcDatetime


class ApprovalOut(_Out):
    id: int
    item_id: int
    approver_id: int
    created_at: UtcDatetime


class SummaryOut(BaseModel):
    item_id: int
    summary: str
