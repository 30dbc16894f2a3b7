"""Login: the endpoint every user hits first and every attacker hits most."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, HTTPException, Request, status
from sqlalchemy import select

import lightkeeper
from examples.saas_app.db import SessionDep
from examples.saas_app.models import User
from examples.saas_app.schemas import LoginRequest, TokenResponse
from examples.saas_app.security import DUMMY_HASH, TOKEN_TTL_SECONDS, issue_token, verify_password

router = APIRouter(prefix="/api/auth", tags=["auth"])
log = structlog.get_logger(__name__)


@router.post("/login")
def login(body: LoginRequest, request: Request, session: SessionDep) -> TokenResponse:
    # A `def` endpoint: FastAPI runs it in the thread pool, so the deliberately slow
    # password hash does not block the event loop.
    user = session.scalar(select(User).where(User.email == body.email.strip().lower()))
    password_ok = verify_password(body.password, user.password_hash if user else DUMMY_HASH)
    if user is None or not password_ok:
        # Log who failed by outcome only: the attempted email is personal data.
        log.warning("user_login_failed", reason="invalid_credentials")
        lightkeeper.auth_attempt(outcome="failure", method="password")
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid email or password")
    log.info("user_login", user_id=user.id)
    lightkeeper.auth_attempt(outcome="success", method="password")
    lightkeeper.usage("login_succeeded")
    token = issue_token(user.id, request.app.state.config.secret_key)
    return TokenResponse(access_token=token, expires_in=TOKEN_TTL_SECONDS)
