"""Tenants (organizations) and the workspaces inside them."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy import select

import lightkeeper
from examples.saas_app.access import CurrentUser, member_org_ids, organization_for, workspace_for
from examples.saas_app.db import SessionDep
from examples.saas_app.models import Membership, Organization, Workspace
from examples.saas_app.schemas import OrganizationCreate, OrganizationOut, WorkspaceCreate, WorkspaceOut

router = APIRouter(prefix="/api", tags=["organizations"])


@router.get("/orgs")
def list_organizations(user: CurrentUser, session: SessionDep) -> list[OrganizationOut]:
    query = select(Organization).where(Organization.id.in_(member_org_ids(session, user)))
    orgs = session.scalars(query.order_by(Organization.id))
    return [OrganizationOut.model_validate(org) for org in orgs]


@router.post("/orgs", status_code=status.HTTP_201_CREATED)
def create_organization(body: OrganizationCreate, user: CurrentUser, session: SessionDep) -> OrganizationOut:
    org = Organization(name=body.name)
    session.add(org)
    session.flush()
    session.add(Membership(user_id=user.id, organization_id=org.id, role="owner"))
    session.commit()
    lightkeeper.usage("organization_created")
    return OrganizationOut.model_validate(org)


@router.get("/orgs/{org_id}/workspaces")
def list_workspaces(org_id: int, user: CurrentUser, session: SessionDep) -> list[WorkspaceOut]:
    org = organization_for(session, user, org_id)
    query = select(Workspace).where(Workspace.organization_id == org.id).order_by(Workspace.id)
    workspaces = session.scalars(query)
    return [WorkspaceOut.model_validate(w) for w in workspaces]


@router.post("/orgs/{org_id}/workspaces", status_code=status.HTTP_201_CREATED)
def create_workspace(
    org_id: int, body: WorkspaceCreate, user: CurrentUser, session: SessionDep
) -> WorkspaceOut:
    org = organization_for(session, user, org_id)
    workspace = Workspace(organization_id=org.id, name=body.name)
    session.add(workspace)
    session.commit()
    lightkeeper.usage("workspace_created")
    return WorkspaceOut.model_validate(workspace)


@router.get("/workspaces/{workspace_id}")
def get_workspace(workspace_id: int, user: CurrentUser, session: SessionDep) -> WorkspaceOut:
    return WorkspaceOut.model_validate(workspace_for(session, user, workspace_id))
