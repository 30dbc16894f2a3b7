"""A two-route instrumented app the SLO tests drive with a known number of good and bad requests."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException

import lightkeeper

app = FastAPI()


@app.get("/ok")
def ok() -> dict[str, bool]:
    return {"ok": True}


@app.get("/fail")
def fail() -> None:
    raise HTTPException(503, "constructed failure")


lightkeeper.instrument(app, service="tiny", environment="prod")
