"""Refuse NUL characters in the URL and in request bodies, the same way on both stores.

PostgreSQL text cannot hold U+0000: a name, query or title carrying one made the
driver raise, a 500 on PostgreSQL only, while SQLite stored or matched it. No probe
name, title, token or event field legitimately holds one, so such a request is a 400
before any query runs (and a 401 first for an anonymous admin call, by the app's
handler for 400s).
"""

from __future__ import annotations

import re

from fastapi import HTTPException, Request

# `\u0000` in a JSON string, unless its backslash is itself escaped (`\\u0000` is text)
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


async def refuse_nul(request: Request) -> None:
    """An app-wide dependency: 400 when the path, the query or the body holds a NUL."""
    if "\x00" in request.scope["path"]:
        raise HTTPException(400, "the URL path contains a NUL character")
    for key, value in request.query_params.multi_items():
        if "\x00" in key or "\x00" in value:
            raise HTTPException(400, "the query string contains a NUL character")
    if request.method in _BODY_METHODS:
        body = await request.body()
        # The pattern can only match where the literal text `\u0000` occurs; a substring
        # test first keeps the regex (which tries every offset) off ordinary bodies: 37 ms
        # of a 482 KB cost-event batch without it (bench/cost_ingest.py).
        if b"\x00" in body or (b"\\u0000" in body and _JSON_NUL.search(body)):
            raise HTTPException(400, "the request body contains a NUL character (\\u0000)")
