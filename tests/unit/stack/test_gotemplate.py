"""The alert-template subset: what it expands, and a ValueError for everything else."""

from __future__ import annotations

import pytest

from lightkeeper.stack import gotemplate


def test_labels_and_piped_value_expand() -> None:
    text = "{{ $labels.service }} at {{ $value | humanizePercentage }} ({{$value|humanize}})"
    assert gotemplate.expand(text, {"service": "api"}, 0.125) == "api at 12.5% (125m)"


def test_text_without_actions_is_returned_unchanged() -> None:
    assert gotemplate.expand("plain {text} with braces", {}, None) == "plain {text} with braces"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ $value }}", r"raw float formatting.*pipe it through one of humanize"),
        ("{{$value}}", r"raw float formatting"),
        ("{{ $value | }}", r"unsupported template function in \{\{ \$value \| \}\}"),
        ("{{ $value | printf }}", r"unsupported template function .* humanizeDuration"),
        ("{{ $value | humanize | humanize }}", r"use exactly one of"),
        ("{{ }}", r"unsupported template action \{\{  \}\}"),
        ("{{ $labels }}", r"unsupported template action \{\{ \$labels \}\}; use \$labels.<name>"),
        ("{{ $labels. }}", r"does not name a label"),
        ("{{ $labels.a-b }}", r"does not name a label"),
        ("{{ $labels.route }}", r"does not carry"),
        ("{{ .Value }}", r"unsupported template action \{\{ \.Value \}\}"),
        ("{{ $value | humanize }", r"unbalanced '\{\{'"),
        ("value }} here", r"unbalanced '\}\}'"),
        ("{{ $labels.service }} and {{ $value", r"unbalanced '\{\{'"),
    ],
)
def test_malformed_or_unsupported_templates_raise_value_error(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gotemplate.expand(template, {"service": "api"}, 1.0)


def test_value_without_a_test_value_is_refused() -> None:
    with pytest.raises(ValueError, match="has no value"):
        gotemplate.expand("{{ $value | humanize }}", {}, None)
