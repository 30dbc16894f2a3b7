"""The one error generation raises: a message that says what to change in the spec."""

from __future__ import annotations


class GenerationError(ValueError):
    """The spec is valid YAML and a valid model, but cannot produce working rules."""
