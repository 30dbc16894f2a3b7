"""The server's store: tables, migrations, batched writes, roll-ups and uptime queries.

SQLite (one file, WAL) by default and PostgreSQL by URL run the same code; see README.md
in this folder for the layout decisions the engine and HTTP layers rely on.
"""
