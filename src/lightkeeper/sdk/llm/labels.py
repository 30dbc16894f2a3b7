"""Bounded label values for LLM metrics: model names and operation names.

Model names arrive from user code and from provider responses, and new dated
snapshots appear every month: `gpt-4o-2024-08-06` and `claude-3-5-sonnet-20241022`
are folded into their family name, odd characters are refused, and the number of
distinct models per process is capped (`llm_max_models`), later newcomers reading
`other`. Operation names come from `llm_operation()`; when the service declares its
set (`llm_operations`) anything else reads `other`, otherwise they are capped too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from lightkeeper.catalogue import MAX_LABEL_VALUE_LENGTH
from lightkeeper.sdk.integrations._labels import OTHER, Capped

MAX_OPERATIONS = 64
_DATE_SUFFIX = re.compile(r"(?:[-@_](?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4}))$")
_MODEL_CHARS = re.compile(rf"[a-z0-9][a-z0-9._:/-]{{0,{MAX_LABEL_VALUE_LENGTH - 1}}}")
_OPERATION_CHARS = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class Models:
    """Model name -> label, with its own cap so tests and settings can size it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._capped = Capped(limit)
        self._cache: dict[str, str] = {}

    def __call__(self, model: str | None) -> str:
        if not model:
            return OTHER
        found = self._cache.get(model)
        if found is not None:
            return found
        label = normalise_model(model)
        label = self._capped(label) if label != OTHER else OTHER
        if len(self._cache) < 8 * self.limit:
            self._cache[model] = label
        return label


def normalise_model(model: str) -> str:
    """Family name of a model: lower case, date suffix dropped; malformed names read 'other'."""
    name = model.strip().lower()
    base = _DATE_SUFFIX.sub("", name)
    if base and base != name and not base.endswith("-"):
        name = base
    return name if _MODEL_CHARS.fullmatch(name) else OTHER


@dataclass(frozen=True, slots=True)
class Operation:
    """What the caller said the LLM work is for, and whom it is for (cost events only)."""

    name: str
    user_id: str | None = None
    workspace_id: str | None = None


_operation: ContextVar[Operation | None] = ContextVar("lightkeeper_llm_operation", default=None)


@contextmanager
def llm_operation(
    name: str, *, user_id: str | None = None, workspace_id: str | None = None
) -> Iterator[None]:
    """Attribute the LLM calls made inside the block to an operation of the product.

        with lightkeeper.llm_operation("summarise", user_id=user.id):
            client.chat.completions.create(...)

    The name becomes the `operation` label of the cost and request counters, so it must
    be one of a small fixed set (declare it in the `llm_operations` setting); the user
    and workspace ids only reach cost events, the user id hashed. Works across threads
    and asyncio tasks started inside the block (a context variable).
    """
    token = _operation.set(Operation(name, user_id, workspace_id))
    try:
        yield
    finally:
        _operation.reset(token)


# The context variable's own method, not a function around it: read on every call.
current_operation = _operation.get


class Operations:
    """Operation name -> label: the declared set when there is one, else capped."""

    def __init__(self, declared: tuple[str, ...]) -> None:
        self.declared = frozenset(declared)
        self._capped = Capped(MAX_OPERATIONS)

    def __call__(self, name: str) -> str:
        if self.declared:
            return name if name in self.declared else OTHER
        return self._capped(name) if _OPERATION_CHARS.fullmatch(name) else OTHER
