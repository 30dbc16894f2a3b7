"""The one error generation raises: a message that says what to change in the spec."""

from __future__ import annotations

Loc = tuple[str | int, ...]


class GenerationError(ValueError):
    """The spec is valid YAML and a valid model, but cannot produce working rules.

    `loc` is the spec path of the value at fault, e.g. `("slos", "checkout", "objective")`:
    list items may be named by their `name:` instead of an index, because the generators
    hold the SLO, not its position. The CLI turns it into file:line via the spec loader.
    """

    def __init__(self, message: str, loc: Loc = ()) -> None:
        super().__init__(message)
        self.loc = loc
