"""Workflow declarations: what the SDK accepts, what the spec accepts, and that they agree."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from lightkeeper.spec.loader import SpecError, parse_spec
from lightkeeper.workflow import Aggregate, DeclarationError, Entity, from_config, from_spec

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
SPEC_HEAD = "service: api\nenvironments:\n  prod:\n    targets: ['api:8000']\n"


class _Base(DeclarativeBase):
    pass


class ContentItem(_Base):
    __tablename__ = "content_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str]


def test_an_entity_is_named_after_its_table_model_or_schema_qualified_name() -> None:
    assert Entity("content_items", processing=["publishing"]).label == "content_items"
    assert Entity("app.content_items", processing=["publishing"]).label == "content_items"
    assert Entity(ContentItem, processing=["publishing"]).label == "content_items"
    assert Entity(ContentItem.__table__, processing=["publishing"], name="content").label == "content"


def test_thresholds_keep_their_spelling_and_sort_by_duration() -> None:
    entity = Entity("jobs", processing=["running"], stuck_after=["24h", "30m", "90m"])

    assert entity.thresholds == (("30m", 1800), ("90m", 5400), ("24h", 86400))
    assert entity.statuses == ("running",)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"processing": []}, "at least one processing"),
        ({"processing": "running"}, "list of strings"),
        ({"processing": ["running"], "failed": ["running"]}, "both processing and failed"),
        ({"processing": ["running"], "terminal": ["other"]}, "reserved"),
        ({"processing": ["running now"]}, "plain word"),
        ({"processing": ["running"], "stuck_after": ["5m"]}, "outside 30m"),
        ({"processing": ["running"], "stuck_after": ["2d"]}, "outside 30m"),
        ({"processing": ["running"], "stuck_after": ["60m", "1h"]}, "repeat"),
        ({"processing": ["running"], "stuck_after": ["soon"]}, "not a duration"),
        ({"processing": ["running"], "stuck_after": []}, "1 to 5"),
        ({"processing": ["running"], "stuck_after": ["30m", "1h", "2h", "3h", "4h", "5h"]}, "1 to 5"),
        ({"processing": ["running"], "status_column": "status; drop table x"}, "identifier"),
        ({"processing": ["running"], "name": "Jobs!"}, "lowercase name"),
    ],
)
def test_a_declaration_that_cannot_be_sampled_fails_at_start_up(
    arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(DeclarationError, match=message):
        Entity("jobs", **arguments)  # type: ignore[arg-type]


def test_a_table_must_be_named_or_a_table_object() -> None:
    with pytest.raises(DeclarationError, match="neither a table name"):
        Entity(42, processing=["running"])


def test_aggregates_need_a_name_and_sql() -> None:
    assert Aggregate("pending_invites", "SELECT 1").name == "pending_invites"
    with pytest.raises(DeclarationError, match="no SQL"):
        Aggregate("pending_invites", "  ")
    with pytest.raises(DeclarationError, match="lowercase name"):
        Aggregate("Pending Invites", "SELECT 1")


def test_the_spec_section_as_data_becomes_declarations() -> None:
    entities, aggregates = from_config(
        {
            "content_item": {
                "table": "content_items",
                "processing_statuses": ["publishing"],
                "waiting_statuses": ["review"],
                "terminal_statuses": ["published"],
                "failed_statuses": ["failed"],
                "stuck_thresholds": ["30m", "2h"],
                "age_column": "changed_at",
            },
            "invite": {"processing_statuses": ["sent"]},
        },
        {"pending_invites": "SELECT count(*) FROM invites", "active_7d": {"sql": "SELECT 2"}},
    )

    item, invite = entities
    assert (item.label, item.table, item.age_column) == ("content_item", "content_items", "changed_at")
    assert item.statuses == ("publishing", "review", "published", "failed")
    assert [t for t, _ in item.thresholds] == ["30m", "2h"]
    assert (invite.table, invite.status_column, invite.stuck_after) == ("invite", "status", ("30m", "24h"))
    assert [(a.name, a.sql) for a in aggregates] == [
        ("pending_invites", "SELECT count(*) FROM invites"),
        ("active_7d", "SELECT 2"),
    ]


def test_the_spec_section_rejects_unknown_keys_and_shared_names() -> None:
    with pytest.raises(DeclarationError, match="unknown keys"):
        from_config({"job": {"processing_statuses": ["running"], "stuck_after": ["1h"]}})
    with pytest.raises(DeclarationError, match="more than once"):
        from_config({"job": {"processing_statuses": ["running"]}}, {"job": "SELECT 1"})


def test_from_spec_reads_lightkeeper_yaml(tmp_path: Path) -> None:
    path = tmp_path / "lightkeeper.yaml"
    path.write_text(
        SPEC_HEAD
        + "workflow:\n"
        + "  content_item:\n"
        + "    table: content_items\n"
        + "    processing_statuses: [publishing, exporting]\n"
        + "    terminal_statuses: [published]\n"
        + "    stuck_thresholds: [30m, 24h]\n"
        + "workflow_aggregates:\n"
        + "  pending_invites: {sql: 'SELECT count(*) FROM invites', description: Invites not accepted}\n",
        encoding="utf-8",
    )

    entities, aggregates = from_spec(path)

    assert [(e.label, e.table, e.processing) for e in entities] == [
        ("content_item", "content_items", ("publishing", "exporting"))
    ]
    assert [a.name for a in aggregates] == ["pending_invites"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{processing_statuses: [a], stuck_thresholds: [5m]}", "outside 30m"),
        ("{processing_statuses: [a], failed_statuses: [a]}", "both processing and failed"),
        ("{processing_statuses: [other]}", "other than 'other'"),
        ("{processing_statuses: [a], stuck_thresholds: [1h, 60m]}", "repeat"),
        ("{processing_statuses: [a], status_column: 'x y'}", "status_column"),
        ("{processing_statuses: [a], stuck_after: [1h]}", "stuck_after"),
    ],
)
def test_the_spec_applies_the_same_rules(entry: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec(SPEC_HEAD + f"workflow:\n  job: {entry}\n")
    with pytest.raises(SpecError, match="workflow"):
        parse_spec(SPEC_HEAD + "workflow:\n  Job-Name: {processing_statuses: [a]}\n")


def test_fold_counts_declared_statuses_and_folds_the_rest_into_other() -> None:
    from lightkeeper.sdk.workflow.query import fold

    class Status(enum.Enum):
        PUBLISHING = "publishing"

    entity = Entity(
        "items", processing=["publishing", "exporting"], terminal=["published"], stuck_after=["30m", "2h"]
    )
    naive_old = (NOW - timedelta(hours=3)).replace(tzinfo=None)  # naive timestamps are UTC
    # The count part, then the processing part (count NULL) of the query, whose last
    # columns are disjoint age bands: 30m..2h old, then older than 2h.
    rows = [
        (Status.PUBLISHING, 4, None, None, None),
        ("published", 10, None, None, None),
        ("surprise", 2, None, None, None),
        (None, 1, None, None, None),
        (Status.PUBLISHING, None, naive_old, 2, 1),
        ("published", None, NOW - timedelta(days=9), 10, 10),  # old, but done: never stuck
    ]

    sample = fold(entity, rows, NOW)

    assert sample.counts == {"publishing": 4, "exporting": 0, "published": 10, "other": 3}
    assert sample.stuck == {
        ("publishing", "30m"): 3,
        ("publishing", "2h"): 1,
        ("exporting", "30m"): 0,
        ("exporting", "2h"): 0,
    }
    assert sample.oldest_processing_age == 3 * 3600


def test_fold_of_an_empty_table_is_all_zeros() -> None:
    from lightkeeper.sdk.workflow.query import fold

    sample = fold(Entity("items", processing=["running"]), [], NOW)

    assert sample.counts == {"running": 0, "other": 0}
    assert set(sample.stuck.values()) == {0}
    assert sample.oldest_processing_age == 0.0


def test_failures_are_classified_into_the_bounded_reasons() -> None:
    from lightkeeper.sdk.workflow.query import StatementTimeout, error_reason

    class Canceled(Exception):
        sqlstate = "57014"

    canceled = sa.exc.OperationalError(
        "SELECT 1", {}, Canceled("canceling statement due to statement timeout")
    )
    missing = sa.exc.ProgrammingError("SELECT 1", {}, Exception('relation "x" does not exist'))

    assert error_reason(StatementTimeout(), connecting=False) == "timeout"
    assert error_reason(canceled, connecting=False) == "timeout"
    assert error_reason(missing, connecting=False) == "query"
    assert error_reason(missing, connecting=True) == "connection"
    assert error_reason(RuntimeError("boom"), connecting=False) == "other"
