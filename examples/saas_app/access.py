"""Who is calling, and which tenant's rows they may touch.

Rows of other organizations answer 404 rather than 403, so ids cannot be probed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from examples.saas_app.db import SessionDep
from examples.saas_app.models import ContentItem, Membership, Organization, User, Workspace
from examples.saas_app.security import read_token

_bearer = HTTPBearer(auto_error=False)


def current_user(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    secret = request.app.state.config.secret_key
    user_id = read_token(credentials.credentials, secret) if credentials else None
    user = session.get(User, user_id) if user_id is not None else None
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or invalid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def _not_found(kind: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"{kind} not found")


def member_org_ids(session: Session, user: User) -> list[int]:
    return list(session.scalars(select(Membership.organization_id).where(Membership.user_id == user.id)))


def organization_for(session: Session, user: User, org_id: int) -> Organization:
    org = session.get(Organization, org_id)
    if org is None or org.id not in member_org_ids(session, user):
        raise _not_found("organization")
    return org


def workspace_for(session: Session, user: User, workspace_id: int) -> Workspace:
    workspace = session.get(Workspace, workspace_id)
    if workspace is None or workspace.organization_id not in member_org_ids(session, user):
        raise _not_found("workspace")
    return workspace


def item_for(session: Session, user: User, item_id: int) -> ContentItem:
    item = session.get(ContentItem, item_id)
    workspace = session.get(Workspace, item.workspace_id) if item is not None else None
    if item is None or workspace is None or workspace.organization_id not in member_org_ids(session, user):
        raise _not_found("item")
    return item
