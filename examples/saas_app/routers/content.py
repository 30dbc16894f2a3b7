"""Content items and their editorial workflow: draft -> processing -> review -> approved -> published."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, BackgroundTasks, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

import lightkeeper
from examples.saas_app.access import CurrentUser, item_for, workspace_for
from examples.saas_app.db import SessionDep
from examples.saas_app.models import Approval, Comment, ContentItem, ContentStatus, utcnow
from examples.saas_app.schemas import ApprovalOut, CommentCreate, CommentOut, ItemCreate, ItemOut, ItemUpdate

router = APIRouter(prefix="/api", tags=["content"])
log = structlog.get_logger(__name__)

# Moves an editor may make with PATCH; approving and publishing have their own endpoints.
EDITABLE_TRANSITIONS: dict[ContentStatus, frozenset[ContentStatus]] = {
    ContentStatus.DRAFT: frozenset({ContentStatus.PROCESSING}),
    ContentStatus.PROCESSING: frozenset({ContentStatus.REVIEW, ContentStatus.FAILED}),
    ContentStatus.REVIEW: frozenset({ContentStatus.DRAFT}),
    ContentStatus.FAILED: frozenset({ContentStatus.DRAFT}),
}


def _move(item: ContentItem, to: ContentStatus) -> None:
    item.status = to
    item.status_changed_at = utcnow()


def _conflict(item: ContentItem, action: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, f"cannot {action} an item in status '{item.status}'")


@router.get("/workspaces/{workspace_id}/items")
def list_items(
    workspace_id: int,
    user: CurrentUser,
    session: SessionDep,
    status_filter: Annotated[ContentStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[ItemOut]:
    workspace = workspace_for(session, user, workspace_id)
    query = select(ContentItem).where(ContentItem.workspace_id == workspace.id)
    if status_filter is not None:
        query = query.where(ContentItem.status == status_filter)
    items = session.scalars(query.order_by(ContentItem.id.desc()).limit(limit))
    return [ItemOut.model_validate(item) for item in items]


@router.post("/workspaces/{workspace_id}/items", status_code=status.HTTP_201_CREATED)
def create_item(workspace_id: int, body: ItemCreate, user: CurrentUser, session: SessionDep) -> ItemOut:
    workspace = workspace_for(session, user, workspace_id)
    item = ContentItem(workspace_id=workspace.id, author_id=user.id, title=body.title, body=body.body)
    session.add(item)
    session.commit()
    # Every demo tenant is on the team plan; a real app reads it from the organization.
    lightkeeper.usage("content_item_created", plan="team")
    log.info("content_item_created", item_id=item.id, workspace_id=workspace.id)
    return ItemOut.model_validate(item)


@router.get("/items/{item_id}")
def get_item(item_id: int, user: CurrentUser, session: SessionDep) -> ItemOut:
    return ItemOut.model_validate(item_for(session, user, item_id))


@router.patch("/items/{item_id}")
def update_item(item_id: int, body: ItemUpdate, user: CurrentUser, session: SessionDep) -> ItemOut:
    item = item_for(session, user, item_id)
    if body.status is not None and body.status != item.status:
        if body.status not in EDITABLE_TRANSITIONS.get(item.status, frozenset()):
            raise _conflict(item, f"move to '{body.status}'")
        _move(item, body.status)
    if body.title is not None:
        item.title = body.title
    if body.body is not None:
        item.body = body.body
    session.commit()
    return ItemOut.model_validate(item)


@router.post("/items/{item_id}/comments", status_code=status.HTTP_201_CREATED)
def add_comment(item_id: int, body: CommentCreate, user: CurrentUser, session: SessionDep) -> CommentOut:
    item = item_for(session, user, item_id)
    comment = Comment(item_id=item.id, author_id=user.id, body=body.body)
    session.add(comment)
    session.commit()
    lightkeeper.usage("comment_added")
    return CommentOut.model_validate(comment)


@router.post("/items/{item_id}/approve")
def approve_item(item_id: int, user: CurrentUser, session: SessionDep) -> ItemOut:
    item = item_for(session, user, item_id)
    if item.author_id == user.id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "authors cannot approve their own items")
    if item.status != ContentStatus.REVIEW:
        raise _conflict(item, "approve")
    session.add(Approval(item_id=item.id, approver_id=user.id))
    _move(item, ContentStatus.APPROVED)
    session.commit()
    lightkeeper.usage("content_item_approved")
    log.info("content_item_approved", item_id=item.id)
    return ItemOut.model_validate(item)


@router.post("/items/{item_id}/publish", status_code=status.HTTP_202_ACCEPTED)
def publish_item(
    item_id: int, request: Request, background: BackgroundTasks, user: CurrentUser, session: SessionDep
) -> ItemOut:
    item = item_for(session, user, item_id)
    if item.status != ContentStatus.APPROVED:
        raise _conflict(item, "publish")
    # The client gets 202 now; the push to the CDN happens after the response is sent.
    background.add_task(push_to_cdn, request.app.state.sessions, item.id)
    return ItemOut.model_validate(item)


def push_to_cdn(sessions: Callable[[], Session], item_id: int) -> None:
    with lightkeeper.track_dependency("cdn", "upload"):
        time.sleep(0.05)  # stands in for rendering and uploading the page
    with sessions() as session:
        item = session.get(ContentItem, item_id)
        if item is None or item.status != ContentStatus.APPROVED:
            return
        _move(item, ContentStatus.PUBLISHED)
        session.commit()
    lightkeeper.usage("content_item_published")
    log.info("content_item_published", item_id=item_id)


@router.get("/items/{item_id}/export")
def export_item(item_id: int, user: CurrentUser, session: SessionDep) -> StreamingResponse:
    """The item, its comments and approvals as NDJSON, one row per chunk."""
    item = item_for(session, user, item_id)
    rows = [_row("item", ItemOut.model_validate(item))]
    rows += [_row("comment", CommentOut.model_validate(c)) for c in item.comments]
    rows += [_row("approval", ApprovalOut.model_validate(a)) for a in item.approvals]
    rows.append({"type": "end", "rows": len(rows)})
    return StreamingResponse(_ndjson(rows), media_type="application/x-ndjson")


def _row(kind: str, model: BaseModel) -> dict[str, Any]:
    return {"type": kind, **model.model_dump(mode="json")}


async def _ndjson(rows: list[dict[str, Any]]) -> AsyncIterator[bytes]:
    for row in rows:
        yield json.dumps(row).encode() + b"\n"
        await asyncio.sleep(0.01)  # a real export renders page by page
