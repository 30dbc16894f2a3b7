"""The browser front end: HTML pages that load the RUM script, so the app has web vitals to show.

Each page names its own route template in the script tag (`data-page`), never its URL:
`/app/items/{item_id}` is one page however many items there are, so one `page` label.
The page is a shell: it carries no tenant data, and its script fetches the item from
the API with the bearer token the browser holds (in `sessionStorage`, key `token`), so
access rules stay where they are, in the API.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["pages"])

ITEM_PAGE = "/app/items/{item_id}"
# Where `instrument()` serves the script (its `rum_script_path` setting, left at the default).
RUM_SCRIPT = "/lightkeeper/rum.js"

_ITEM_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Content item {item_id} - Acme Content</title>
<script src="{rum_script}" data-page="{page}" defer></script>
</head>
<body>
<main data-item-id="{item_id}">
<h1>Content item <span id="item-id">{item_id}</span></h1>
<p id="status">Press Load to read the item.</p>
<button id="load" type="button">Load</button>
<pre id="item"></pre>
</main>
<script>
document.getElementById("load").addEventListener("click", async function () {{
  var status = document.getElementById("status");
  var token = sessionStorage.getItem("token");
  if (!token) {{ status.textContent = "Sign in first (POST /api/auth/login)."; return; }}
  var response = await fetch("/api/items/{item_id}", {{ headers: {{ Authorization: "Bearer " + token }} }});
  status.textContent = response.ok ? "Loaded." : "Could not load the item (" + response.status + ").";
  if (response.ok) {{
    document.getElementById("item").textContent = JSON.stringify(await response.json(), null, 2);
  }}
}});
</script>
</body>
</html>
"""


@router.get(ITEM_PAGE, response_class=HTMLResponse)
def item_page(item_id: int) -> HTMLResponse:
    """An item's page; `item_id` is an int, so nothing the visitor typed reaches the HTML."""
    html = _ITEM_HTML.format(item_id=item_id, page=escape(ITEM_PAGE), rum_script=escape(RUM_SCRIPT))
    return HTMLResponse(html)
