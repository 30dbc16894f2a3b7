"""Notifications: a durable outbox drained by a leased dispatcher into small channel modules.

An incident change is written to the `outbox` table in the same transaction as the
change itself; the dispatcher fans each row out into one delivery row per receiver
and marks a delivery sent only after the channel accepted it.
"""
