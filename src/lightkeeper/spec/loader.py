"""Read `lightkeeper.yaml` into a `Spec`, with errors that point at the line to fix.

PyYAML composes the document into nodes that remember where they started; pydantic
validates the plain data. Each pydantic error location (`slos.0.sli.threshold_seconds`)
is walked back through the nodes to a line and column, and the message gains a
sentence saying what to write instead. Duplicate keys, which YAML parsers accept
silently (the last one wins), are errors here too.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from lightkeeper.spec.models import LocatedValueError, Spec
from lightkeeper.spec.probes import PROBE_TYPES


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the spec, and where."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class SpecError(ValueError):
    """The spec cannot be used; `problems` lists every error found, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.line, p.column, p.field))
        super().__init__("\n".join(str(p) for p in self.problems))


def load_spec(path: str | Path) -> Spec:
    """Load and validate a spec file; raises SpecError naming file, line and field."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(
            [Problem(str(file), 0, 0, "", "file not found; run `lightkeeper init` to write a starter spec")]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(
            [Problem(str(file), 0, 0, "", f"cannot read the file ({exc.__class__.__name__})")]
        ) from None
    return parse_spec(text, str(file))


def parse_spec(text: str, filename: str = "lightkeeper.yaml") -> Spec:
    """Validate spec text; `filename` only labels the errors."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise SpecError(
            [
                Problem(
                    filename, line, col, "", f"not valid YAML ({exc.problem}); check indentation and quoting"
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError([Problem(filename, 0, 0, "", f"not valid YAML ({exc})")]) from None
    if node is None:
        raise SpecError(
            [Problem(filename, 1, 1, "", "the spec is empty; run `lightkeeper init` for a starter")]
        )
    if not isinstance(node, yaml.MappingNode):
        raise SpecError(
            [
                Problem(
                    filename, *_pos(node), "", "the spec must be a mapping that starts with `service: <name>`"
                )
            ]
        )
    duplicates = list(_duplicate_keys(node, filename, ()))
    if duplicates:
        raise SpecError(duplicates)
    data = yaml.SafeLoader(text).get_single_data()
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError([_problem(err, node, filename) for err in exc.errors(include_url=False)]) from None


def problem_at(path: str | Path, loc: tuple[str | int, ...], message: str) -> Problem:
    """Place an error found after validation (by the generators) at its value in the spec file.

    `loc` may name list items by their `name:`; the field is shown with positions, as written.
    A file that cannot be read or parsed any more still yields the field, at line 0.
    """
    filename = str(path)
    try:
        root = yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        root = None
    if root is None:
        return Problem(filename, 0, 0, _dotted(loc), message)
    return Problem(filename, *_pos(_locate(root, loc)), _dotted(_walkable(root, loc)), message)


# --- node positions -------------------------------------------------------------------
def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _duplicate_keys(node: yaml.Node, filename: str, path: tuple[str | int, ...]) -> typing.Iterator[Problem]:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                yield Problem(
                    filename,
                    *_pos(key),
                    _dotted((*path, name)),
                    f"key {name!r} appears twice in this mapping; keep one (YAML silently uses the last)",
                )
            seen.add(name)
            yield from _duplicate_keys(value, filename, (*path, name))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, filename, (*path, i))


def _locate(root: yaml.Node, loc: tuple[str | int, ...]) -> yaml.Node:
    """The deepest node on `loc`; parts that match nothing (union tags, missing keys) are skipped."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if str(k.value) == str(part)), None)
            if match is not None:
                node = match
        elif isinstance(node, yaml.SequenceNode):
            index = _index(node, part)
            if index is not None:
                node = node.value[index]
    return node


def _index(node: yaml.SequenceNode, part: str | int) -> int | None:
    """A list position, given as one or as the item's `name:` (how generators know an SLO)."""
    if isinstance(part, int):
        return part if part < len(node.value) else None
    for i, item in enumerate(node.value):
        if isinstance(item, yaml.MappingNode) and any(
            str(k.value) == "name" and str(v.value) == part for k, v in item.value
        ):
            return i
    return None


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --- messages -------------------------------------------------------------------------
def _problem(err: ErrorDetails, root: yaml.Node, filename: str) -> Problem:
    loc = tuple(err["loc"])
    if err["type"] == "union_tag_invalid" and "'type'" in str((err.get("ctx") or {}).get("discriminator")):
        loc = (*loc, "type")  # point at the probe's wrong `type:` value, not the whole entry
    error = (err.get("ctx") or {}).get("error")
    if err["type"] == "value_error" and isinstance(error, LocatedValueError):
        loc = (*loc, *error.loc)  # a cross-field check names the value at fault itself
    if err["type"] == "extra_forbidden":
        node = _locate(root, loc[:-1])
        key_node = _key_node(node, str(loc[-1]))
        line, col = _pos(key_node if key_node is not None else node)
        field = _dotted(_walkable(root, loc))
        return Problem(filename, line, col, field, _unknown_key(loc))
    line, col = _pos(_locate(root, loc))
    field = _dotted(_walkable(root, loc))
    return Problem(filename, line, col, field, _explain(err, loc))


def _key_node(node: yaml.Node, name: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, _ in node.value:
            if str(key.value) == name:
                return typing.cast(yaml.Node, key)
    return None


def _walkable(root: yaml.Node, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """The error location without pydantic's union tags, as the user wrote it."""
    out: list[str | int] = []
    node: yaml.Node | None = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if str(k.value) == str(part)), None)
            if match is None and _is_union_tag(part):
                continue
            out.append(part)
            node = match
        elif isinstance(node, yaml.SequenceNode) and (index := _index(node, part)) is not None:
            out.append(index)
            node = node.value[index]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            out.append(part)
            node = None
        else:
            if not _is_union_tag(part):
                out.append(part)
            node = None
    return tuple(out)


def _is_union_tag(part: str | int) -> bool:
    return isinstance(part, str) and (
        part in {"availability", "latency"}
        or part in PROBE_TYPES
        or part.startswith(("list[", "dict[", "float", "int", "str", "function-"))
        or part in {"SeverityRoute", "AlertThresholds"}
    )


def _explain(err: ErrorDetails, loc: tuple[str | int, ...]) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "missing":
        name = loc[-1] if loc else "?"
        return f"required key {name!r} is missing; add `{name}: ...` here"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{msg.lower()}; write a whole number such as 50 (no unit, no quotes)"
    if kind in ("float_parsing", "float_type"):
        return f"{msg.lower()}; write a plain number such as 0.5 or 99.9 (no unit, no %)"
    if kind in ("string_type",):
        return f"{msg.lower()}; write a quoted string"
    if kind in ("list_type",):
        return f"{msg.lower()}; write a list, e.g. [a, b] or one '- item' per line"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"{msg.lower()}; write a mapping of `key: value` lines"
    if kind == "literal_error":
        return f"{msg.lower()}"
    if kind in ("union_tag_invalid", "union_tag_not_found") and "type" in str(
        (err.get("ctx") or {}).get("discriminator")
    ):
        return f"this probe needs `type:` with one of {', '.join(PROBE_TYPES)}"
    if kind == "union_tag_invalid":
        return f"{msg.lower()}; write `kind: availability` or `kind: latency`"
    if kind == "union_tag_not_found":
        return "this SLI needs `kind: availability` or `kind: latency`"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = next(iter((err.get("ctx") or {}).values()), "")
        word = {
            "greater_than": "above",
            "greater_than_equal": "of at least",
            "less_than": "below",
            "less_than_equal": "of at most",
        }[kind]
        return f"{msg.lower()}; write a number {word} {bound}"
    if kind in ("too_short",):
        return f"{msg.lower()}; give at least one entry"
    if kind == "bool_parsing":
        return "write true or false"
    return msg


def _unknown_key(loc: tuple[str | int, ...]) -> str:
    name = str(loc[-1])
    allowed = _allowed_keys(Spec, loc[:-1])
    if allowed is None:
        return f"unknown key {name!r}; remove it"
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key {name!r}; {hint}allowed here: {', '.join(sorted(allowed))}"


def _allowed_keys(model: Any, loc: tuple[str | int, ...]) -> list[str] | None:
    """Field names (aliases) of the model found at `loc`, following lists, dicts and unions."""
    candidates: list[Any] = [model]
    for part in loc:
        nxt: list[Any] = []
        for tp in candidates:
            nxt.extend(_step(tp, part))
        candidates = nxt
    for tp in candidates:
        for inner in _unwrap(tp):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return [f.alias or n for n, f in inner.model_fields.items()]
    return None


def _unwrap(tp: Any) -> list[Any]:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin is typing.Union or origin is types.UnionType:
        out: list[Any] = []
        for arg in typing.get_args(tp):
            out.extend(_unwrap(arg))
        return out
    return [tp]


def _step(tp: Any, part: str | int) -> list[Any]:
    out: list[Any] = []
    for inner in _unwrap(tp):
        origin = typing.get_origin(inner)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            for name, info in inner.model_fields.items():
                if part in (name, info.alias):
                    out.append(info.annotation)
            if isinstance(part, str) and any(
                typing.get_origin(a) is typing.Literal and part in typing.get_args(a)
                for a in [getattr(inner.model_fields.get(d), "annotation", None) for d in ("kind", "type")]
            ):
                out.append(inner)  # a discriminated-union tag names this very model
        elif origin in (list, tuple) and isinstance(part, int):
            out.append(typing.get_args(inner)[0])
        elif origin is dict:
            out.append(typing.get_args(inner)[1])
    return out
