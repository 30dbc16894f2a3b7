"""The server's engine: scheduling probes, turning results into state and incidents, notifying.

Everything here talks to the store through SQLAlchemy Core so the same code runs on
SQLite (one replica) and on PostgreSQL (several replicas sharing work through leases).
"""
