"""One JSON POST with an error message that never repeats the URL (it may hold a token)."""

from __future__ import annotations

from typing import Any

import httpx

from lightkeeper.server.engine.notify.message import DeliveryError


async def post_json(
    client: httpx.AsyncClient, url: str, body: Any, what: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    """POST `body`; any transport error or non-2xx status becomes a `DeliveryError` about `what`."""
    try:
        response = await client.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        # httpx messages can embed the request URL; the class name is enough to act on
        raise DeliveryError(f"{what}: {type(exc).__name__}") from None
    if not response.is_success:
        raise DeliveryError(f"{what}: HTTP {response.status_code}")
    return response
