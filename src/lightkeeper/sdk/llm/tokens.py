"""Token counts read from OpenAI and Anthropic usage blocks, in one convention.

The two providers count differently, and each difference has cost some tool a wrong
bill: OpenAI's `prompt_tokens` already include `cached_tokens` and its
`completion_tokens` already include `reasoning_tokens`, while Anthropic's
`input_tokens` exclude both `cache_read_input_tokens` and
`cache_creation_input_tokens`. `Tokens` uses genai-prices' convention (and the GenAI
semantic conventions'): `input` is every input token, cached or not, `output` every
billed output token, and the cache and reasoning counts are parts of them.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Tokens(NamedTuple):
    """Tokens of one call; `cache_read`, `cache_write` are parts of `input`, `reasoning` of `output`.

    A named tuple: built once per call on the caller's path, where a frozen dataclass
    costs several times more to construct.
    """

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0


def _int(obj: Any, name: str) -> int:
    value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return value if isinstance(value, int) and value > 0 else 0


def _part(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def openai_chat(usage: Any) -> Tokens | None:
    """Chat completions (and embeddings): cached and reasoning counts are already inside the totals."""
    if usage is None:
        return None
    return Tokens(
        input=_int(usage, "prompt_tokens"),
        output=_int(usage, "completion_tokens"),
        cache_read=_int(_part(usage, "prompt_tokens_details"), "cached_tokens"),
        reasoning=_int(_part(usage, "completion_tokens_details"), "reasoning_tokens"),
    )


def openai_responses(usage: Any) -> Tokens | None:
    """The Responses API names them input/output, with the same inclusion rules as chat."""
    if usage is None:
        return None
    return Tokens(
        input=_int(usage, "input_tokens"),
        output=_int(usage, "output_tokens"),
        cache_read=_int(_part(usage, "input_tokens_details"), "cached_tokens"),
        reasoning=_int(_part(usage, "output_tokens_details"), "reasoning_tokens"),
    )


def anthropic(usage: Any) -> Tokens | None:
    """Anthropic reports cache reads and writes beside `input_tokens`, so they are added in."""
    if usage is None:
        return None
    cache_read = _int(usage, "cache_read_input_tokens")
    cache_write = _int(usage, "cache_creation_input_tokens")
    return Tokens(
        input=_int(usage, "input_tokens") + cache_read + cache_write,
        output=_int(usage, "output_tokens"),
        cache_read=cache_read,
        cache_write=cache_write,
    )
