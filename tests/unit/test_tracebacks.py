"""lightkeeper.sdk.tracebacks: the caret-free traceback text, its frames formatted (and
cleaned) once per stack, and nothing of a request kept after it is formatted."""

from __future__ import annotations

import gc
import traceback
import weakref

import pytest

from lightkeeper.sdk import redact
from lightkeeper.sdk.tracebacks import MAX_CHAINED, TracebackText, format_exception

PASSWORD = "correct-horse-battery-9"


def standard_without_carets(exc: BaseException) -> list[str]:
    """The standard library's text minus its column markers (^^^^ / ~~~~ lines)."""
    standard = "".join(traceback.format_exception(exc)).rstrip("\n")
    return [line for line in standard.splitlines() if not line.strip() or set(line.strip()) - set("^~")]


def caught(fn: object, *args: object) -> BaseException:
    try:
        fn(*args)  # type: ignore[operator]
    except BaseException as exc:  # the exception is the test's subject
        return exc
    raise AssertionError("expected an exception")


def fail(message: str) -> None:
    raise ValueError(message)


def via_a(message: str) -> None:
    fail(message)


def via_b(message: str) -> None:
    fail(message)


def chained_cause() -> None:
    try:
        fail("inner")
    except ValueError as exc:
        raise RuntimeError("while loading") from exc


def chained_context_plain() -> None:
    try:
        fail("inner")
    except ValueError:
        raise KeyError("during handling")  # noqa: B904


def suppressed() -> None:
    try:
        fail("inner")
    except ValueError:
        raise KeyError("no context") from None


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str broke")


def unprintable() -> None:
    raise Unprintable


def with_note() -> None:
    exc = ValueError("noted")
    exc.add_note("while importing row 7")
    raise exc


def syntax() -> None:
    compile("x = = 1", "<input>", "exec")


@pytest.mark.parametrize(
    "make",
    [
        lambda: caught(via_a, "plain"),
        lambda: caught(chained_cause),
        lambda: caught(chained_context_plain),
        lambda: caught(suppressed),
        lambda: caught(unprintable),
        lambda: caught(with_note),
        lambda: caught(via_a, ""),
    ],
    ids=["plain", "cause", "context", "suppressed", "unprintable", "note", "empty-message"],
)
def test_the_text_is_the_standard_one_without_carets_every_time(make: object) -> None:
    exc = make()  # type: ignore[operator]
    expected = standard_without_carets(exc)
    formatter = TracebackText()
    assert formatter(exc).splitlines() == expected
    assert formatter(exc).splitlines() == expected  # the second time from the remembered frames
    assert format_exception(exc).splitlines() == expected


def test_a_syntax_error_keeps_its_own_marker_lines() -> None:
    exc = caught(syntax)
    own = "".join(traceback.format_exception_only(type(exc), exc)).rstrip("\n")
    text = TracebackText()(exc)
    assert text.endswith("\n" + own) and "^" in own  # where the parser stopped, as Python shows it
    assert text.startswith("Traceback (most recent call last):\n") and "in syntax" in text


def test_an_exception_without_a_traceback_is_its_line() -> None:
    assert format_exception(ValueError("never raised")) == "ValueError: never raised"
    assert format_exception(KeyError()) == "KeyError"


def test_a_long_or_circular_chain_is_cut() -> None:
    first, second = ValueError("a"), TypeError("b")
    first.__context__, second.__context__ = second, first
    text = format_exception(first)
    assert text.count("ValueError: a") == 1 and text.count("TypeError: b") == 1

    def nested(depth: int) -> None:
        if depth == 0:
            raise RuntimeError("level 0")
        try:
            nested(depth - 1)
        except RuntimeError as exc:
            raise RuntimeError(f"level {depth}") from exc

    text = format_exception(caught(nested, 9))
    assert text.count("RuntimeError: level") == MAX_CHAINED
    assert "RuntimeError: level 9" in text and "RuntimeError: level 4" not in text


def test_one_stack_is_formatted_and_cleaned_once_and_its_message_every_time() -> None:
    cleaned: list[str] = []

    def clean(text: str) -> str:
        cleaned.append(text)
        return text

    formatter = TracebackText(clean)
    texts = [formatter(caught(via_a, f"order {n} failed")) for n in range(3)]
    frames = [text for text in cleaned if text.startswith("Traceback")]
    assert len(frames) == 1  # the stack's frames: once
    for n, text in enumerate(texts):
        assert text.endswith(f"ValueError: order {n} failed")  # each message its own
        assert text.splitlines()[:-1] == texts[0].splitlines()[:-1]


def test_the_same_raising_line_reached_by_two_paths_keeps_two_stacks() -> None:
    formatter = TracebackText()
    by_a = formatter(caught(via_a, "x"))
    by_b = formatter(caught(via_b, "x"))
    assert "in via_a" in by_a and "in via_b" not in by_a
    assert "in via_b" in by_b and "in via_a" not in by_b
    assert formatter(caught(via_a, "x")) == by_a


def test_secrets_in_the_message_and_in_a_frames_source_line_never_appear() -> None:
    def connect() -> None:
        raise ConnectionError(f"postgresql://app:{PASSWORD}@db/prod refused")  # password=hunter2-source

    formatter = TracebackText(redact.redact_text)
    for _ in range(3):  # the remembered frames are the cleaned ones
        exc = caught(connect)
        text = formatter(exc)
        assert PASSWORD not in text and "hunter2-source" not in text
        assert text == redact.redact_text(format_exception(exc))
        assert "in connect" in text and text.startswith("Traceback (most recent call last):")
    # A message that had to be masked is not remembered as clean.
    assert not any(PASSWORD in line for line in formatter._clean_lines)


def test_messages_are_cleaned_every_time_even_after_a_clean_one() -> None:
    formatter = TracebackText(redact.redact_text)
    assert formatter(caught(via_a, "plain failure")).endswith("ValueError: plain failure")
    text = formatter(caught(via_a, f"password={PASSWORD}"))
    assert PASSWORD not in text and text.endswith(f"ValueError: password={redact.MASK}")


def test_memory_is_bounded_and_can_be_forgotten() -> None:
    formatter = TracebackText(max_stacks=2)
    stacks = [caught(via_a, "1"), caught(via_b, "2"), caught(chained_cause), caught(suppressed)]
    for exc in stacks:
        formatter(exc)
        assert len(formatter._stacks) <= 2 and len(formatter._clean_lines) <= 2
    for exc in stacks:  # still right after the memory started over
        assert formatter(exc).splitlines() == standard_without_carets(exc)
    formatter.forget()
    assert not formatter._stacks and not formatter._clean_lines


def test_no_frame_or_local_outlives_the_exception() -> None:
    class Secret:
        pass

    def holds_a_secret() -> None:
        secret = Secret()
        keep.append(weakref.ref(secret))
        raise ValueError("with a local")

    keep: list[weakref.ref[Secret]] = []
    formatter = TracebackText(redact.redact_text)
    exc = caught(holds_a_secret)
    formatter(exc)
    formatter(exc)
    del exc
    gc.collect()
    assert keep[0]() is None  # the formatter kept no frame, so no local


def test_text_cleaned_under_rules_that_changed_meanwhile_is_not_remembered() -> None:
    formatter: TracebackText

    def clean_then_reconfigure(text: str) -> str:
        formatter.forget()  # the redaction was reconfigured while this text was cleaned
        return text

    formatter = TracebackText(clean_then_reconfigure)
    formatter(caught(via_a, "x"))
    assert not formatter._stacks and not formatter._clean_lines
