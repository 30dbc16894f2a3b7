"""Traceback text for log lines and span events, without the standard library's carets.

A leaf module: logs, error reporting and tracing all format exceptions, and none of
them should have to import another to do it.

A failing request pays for its traceback on the request path, so the text is built
from parts that repeat. The frames of a stack (file, line, function and source line
of each) are the same every time one code path fails: they are formatted once per
stack (and, for log lines, cleaned of secrets once) and then looked up. Only the
exception's own line ("ValueError: message") is rendered, and cleaned, per
occurrence, since the message is where request data appears. Nothing request-scoped
is remembered: the cache holds code objects (to keep its keys' ids unique) and text
made of file names, line numbers and source lines, never frames or their locals.
"""

from __future__ import annotations

import linecache
import threading
import traceback
from collections.abc import Callable
from types import CodeType, TracebackType

__all__ = ["MAX_CHAINED", "TracebackText", "format_exception"]

_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"
_HEADER = "Traceback (most recent call last):\n"
MAX_CHAINED = 5
MAX_STACKS = 256
"""Distinct stacks (and clean exception lines) remembered per formatter; past it the
memory starts over. A healthy service fails along a handful of code paths."""
MAX_REMEMBERED_LINE = 256


def _unchanged(text: str) -> str:
    return text


class TracebackText:
    """Formats exceptions, re-using the frames' text of every stack seen before.

    `clean` is applied to each part that can hold a secret: the frames' text of a
    stack (once, when first seen) and each exception's own line (every time). Given
    a text redactor, the result equals the redactor applied to the whole text, as
    long as no secret spans a line break (none of the redaction's patterns does).
    """

    def __init__(self, clean: Callable[[str], str] = _unchanged, max_stacks: int = MAX_STACKS) -> None:
        self._clean = clean
        self._max = max_stacks
        # (id(code), tb_lasti, id(code), tb_lasti, ...) -> (frames' text, the code objects)
        self._stacks: dict[tuple[int, ...], tuple[str, list[CodeType]]] = {}
        self._clean_lines: set[str] = set()
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop what was formatted (the redaction's rules changed, say)."""
        with self._lock:
            self._stacks = {}
            self._clean_lines = set()

    def __call__(self, exc: BaseException) -> str:
        chain = _chain(exc)
        parts: list[str] = []
        for index in range(len(chain) - 1, -1, -1):
            item = chain[index]
            if index < len(chain) - 1:
                # How this exception came from the older one printed just above it.
                parts.append(_CAUSE if item.__cause__ is not None else _CONTEXT)
            tb = item.__traceback__
            if tb is not None:
                parts.append(self._frames(tb))
            parts.append(self._line(item))
        return "".join(parts).rstrip("\n")

    def _frames(self, tb: TracebackType) -> str:
        # A stack is known by each frame's code object and the instruction it was at
        # (`tb_lasti`: on 3.11 `tb_lineno` is computed from the line table on every
        # read, and the instruction decides the line anyway).
        key: list[int] = []
        mark = key.append
        current: TracebackType | None = tb
        while current is not None:
            mark(id(current.tb_frame.f_code))
            mark(current.tb_lasti)
            current = current.tb_next
        marks = tuple(key)
        stacks = self._stacks
        found = stacks.get(marks)
        if found is not None:
            return found[0]
        codes = [frame.f_code for frame, _ in traceback.walk_tb(tb)]
        text = self._clean(_format_frames(tb))
        with self._lock:
            if stacks is self._stacks:  # else forgotten while cleaning, maybe under old rules
                if len(stacks) >= self._max:
                    stacks.clear()
                # The code objects stay referenced while their ids are keys: no other
                # code object can take an id that is in use, so a key never lies.
                stacks[marks] = (text, codes)
        return text

    def _line(self, exc: BaseException) -> str:
        """The exception's own line, cleaned; a line found clean is remembered.

        Only lines that needed no masking are kept (so the memory never holds a
        secret), and only short ones: an error storm repeats the same few messages.
        """
        line = _exception_line(exc)
        lines = self._clean_lines
        if line in lines:
            return line
        cleaned = self._clean(line)
        if cleaned == line and len(line) <= MAX_REMEMBERED_LINE:
            with self._lock:
                if lines is self._clean_lines:  # else forgotten while cleaning
                    if len(lines) >= self._max:
                        lines.clear()
                    lines.add(line)
        return cleaned


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and the exceptions it was raised from or during, newest first."""
    chain = [exc]
    seen = {id(exc)}
    current = exc
    while len(chain) < MAX_CHAINED:
        if current.__cause__ is not None:
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            current = current.__context__
        else:
            break
        if id(current) in seen:
            break
        seen.add(id(current))
        chain.append(current)
    return chain


def _format_frames(tb: TracebackType) -> str:
    parts = [_HEADER]
    for frame, lineno in traceback.walk_tb(tb):
        code = frame.f_code
        parts.append(f'  File "{code.co_filename}", line {lineno}, in {code.co_name}\n')
        line = linecache.getline(code.co_filename, lineno).strip()
        if line:
            parts.append(f"    {line}\n")
    return "".join(parts)


def _exception_line(exc: BaseException) -> str:
    """`traceback.format_exception_only`, without building a TracebackException.

    The standard library builds one (and, for a chained exception, one per link,
    each extracting its stack) just to print "Type: message". Syntax errors and
    exceptions with notes have more to print: those go to the standard library.
    """
    if isinstance(exc, SyntaxError) or getattr(exc, "__notes__", None) is not None:
        return "".join(traceback.format_exception_only(type(exc), exc))
    exc_type = type(exc)
    name = exc_type.__qualname__
    module = exc_type.__module__
    if module not in ("__main__", "builtins"):
        name = f"{module}.{name}" if isinstance(module, str) else f"<unknown>.{name}"
    try:
        message = str(exc)
    except Exception:
        message = "<exception str() failed>"
    return f"{name}: {message}\n" if message else f"{name}\n"


def format_exception(exc: BaseException) -> str:
    """The familiar "Traceback (most recent call last)" text, chained causes included.

    `traceback.format_exception` on Python 3.11+ re-parses every source line with `ast`
    to draw `^^^^` under the failing expression: about 2 ms for a FastAPI stack, most
    of what a failing request costs. Logs and spans need the frames and the lines,
    not the carets; this reads lines from linecache, once per stack.
    """
    return _plain(exc)


_plain = TracebackText()
