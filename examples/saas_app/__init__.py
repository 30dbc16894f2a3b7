"""Acme Content: a small multi-tenant SaaS API instrumented with one `lightkeeper.instrument()` call.

Run it with `uvicorn examples.saas_app.main:app` from the repository root, or let
`lightkeeper demo` start it and send it traffic.
"""

__version__ = "1.4.2"
