"""Several workers (gunicorn, `uvicorn --workers`): the optional gunicorn hook.

Lightkeeper aggregates the workers' metrics on its own (see docs/multiprocess.md); this
hook only frees a dead worker's metric files at once instead of at the next scrape:

    # gunicorn.conf.py
    from lightkeeper.multiprocess import child_exit  # noqa: F401
"""

from __future__ import annotations

from lightkeeper.sdk.multiprocess import child_exit, mark_worker_dead

__all__ = ["child_exit", "mark_worker_dead"]
