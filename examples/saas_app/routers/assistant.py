"""The writing assistant: an LLM summary of a content item, priced by Lightkeeper.

The OpenAI client is the real `openai` library; `SAAS_OPENAI_BASE_URL` points it at any
OpenAI-shaped API (the demo points it at its local fake, so no key or network is needed).
"""

from __future__ import annotations

from typing import Any

import openai
from fastapi import APIRouter, HTTPException, Request, status

import lightkeeper
from examples.saas_app.access import CurrentUser, item_for
from examples.saas_app.db import SessionDep
from examples.saas_app.schemas import SummaryOut

router = APIRouter(prefix="/api", tags=["assistant"])
MODEL = "gpt-4o-mini"
OPERATION = "summarise"


def make_client(base_url: str | None, api_key: str | None) -> openai.OpenAI | None:
    """An instrumented client, or None when no LLM API is configured (the route then answers 503)."""
    if not base_url and not api_key:
        return None
    client = openai.OpenAI(base_url=base_url, api_key=api_key or "unused", max_retries=0, timeout=30.0)
    lightkeeper.instrument_openai(client)  # tokens, latency and USD cost per model and operation
    return client


@router.post("/items/{item_id}/summary")
def summarise_item(item_id: int, request: Request, user: CurrentUser, session: SessionDep) -> SummaryOut:
    client: Any = request.app.state.llm
    if client is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no LLM API is configured")
    item = item_for(session, user, item_id)
    messages = [
        {"role": "system", "content": "Summarise the post in one sentence."},
        {"role": "user", "content": f"{item.title}\n\n{item.body}"},
    ]
    # The user id reaches only the cost events, hashed; never a metric label.
    with lightkeeper.llm_operation(OPERATION, user_id=str(user.id), workspace_id=str(item.workspace_id)):
        try:
            completion = client.chat.completions.create(model=MODEL, messages=messages)
        except openai.APIError:
            # Counted by Lightkeeper (status="error"); the caller only learns it failed.
            raise HTTPException(status.HTTP_502_BAD_GATEWAY, "the LLM API did not answer") from None
    return SummaryOut(item_id=item.id, summary=completion.choices[0].message.content or "")
