"""Templates and styles of the status page and the SLA report (package data)."""
