"""The in-service half of Lightkeeper: middleware, logs, health, integrations.

Never imports `lightkeeper.stack` or `lightkeeper.server`.
"""
