"""Meeting summaries from per-minute rows: pooling participants, low-attention runs, durations."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from facesocial.domains.attention.summary import (
    duration_minutes,
    figures,
    low_segments,
    meeting_minutes,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ALICE, BOB = uuid.uuid4(), uuid.uuid4()


@dataclass(frozen=True)
class Row:
    participant_id: uuid.UUID
    bucket: datetime
    avg_attention: float | None
    sample_count: int


def minute(i: int) -> datetime:
    return T0 + timedelta(minutes=i)


def test_participants_are_pooled_by_their_samples() -> None:
    rows = [Row(ALICE, minute(0), 90.0, 30), Row(BOB, minute(0), 30.0, 10), Row(ALICE, minute(1), 40.0, 5)]
    pooled = meeting_minutes(rows)
    assert [m.bucket for m in pooled] == [minute(0), minute(1)]
    assert pooled[0].score == pytest.approx((90 * 30 + 30 * 10) / 40)
    assert pooled[0].samples == 40
    found = figures(rows, threshold=50.0)
    # The mean of every sample, not the mean of the minutes.
    assert found.avg_attention_score == pytest.approx(round((90 * 30 + 30 * 10 + 40 * 5) / 45, 2))
    assert found.min_attention_score == 40.0
    assert found.max_attention_score == 75.0
    assert found.low_attention_segments == 1
    assert found.minutes_measured == 2


def test_low_segments_are_maximal_runs_and_a_missing_minute_ends_one() -> None:
    scores = {0: 30.0, 1: 20.0, 2: 80.0, 3: 10.0, 5: 10.0, 6: 49.99, 7: 50.0}
    rows = [Row(ALICE, minute(i), s, 1) for i, s in scores.items()]
    # Runs: {0,1}, {3}, {5,6} (4 has no samples); 50.0 is not below 50.
    assert low_segments(meeting_minutes(rows), 50.0) == 3
    assert low_segments(meeting_minutes(rows), 5.0) == 0
    assert low_segments(meeting_minutes(rows), 100.0) == 2  # {0..3}, {5..7}


def test_no_metrics_give_no_scores() -> None:
    found = figures([Row(ALICE, minute(0), None, 0)], threshold=50.0)
    assert found.avg_attention_score is None and found.min_attention_score is None
    assert found.low_attention_segments == 0 and found.minutes_measured == 0


def test_duration_rounds_to_the_nearest_minute() -> None:
    assert duration_minutes(T0, T0 + timedelta(seconds=29)) == 0
    assert duration_minutes(T0, T0 + timedelta(seconds=30)) == 1
    assert duration_minutes(T0, T0 + timedelta(minutes=44, seconds=31)) == 45
    assert duration_minutes(None, T0) is None
    assert duration_minutes(T0, T0 - timedelta(minutes=1)) == 0
