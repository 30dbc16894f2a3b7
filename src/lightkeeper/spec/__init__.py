"""The `lightkeeper.yaml` models and loader."""
