"""Generators that turn a `lightkeeper.yaml` spec into deployable stack configuration."""
