"""Deployments reported by CI (`lightkeeper deploy start|finish` or a webhook).

They are stored by the server, so the deployment metrics and the DORA numbers come
from one durable record that every replica reads, not from a process's memory.
"""
