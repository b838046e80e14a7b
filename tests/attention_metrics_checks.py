"""Checks of the attention time-series store shared by its SQLite and PostgreSQL tests.

The expected minutes are computed here in Python from the rows the test wrote (the direct
GROUP BY), independently of the SQL under test.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from facesocial.store.attention_metrics import AttentionMetricsStore, MetricRow, MinuteRow

# NUMERIC(6,2) rounds averages half away from zero; Python's float rounding may land 0.01 off.
TOLERANCE = 0.011


def series(
    meeting: uuid.UUID,
    participants: Sequence[uuid.UUID],
    start: datetime,
    seconds: int,
    step: int,
    seed: int,
) -> list[MetricRow]:
    """One row per participant every ``step`` seconds for ``seconds`` seconds, random scores
    with two decimals (gaze sometimes missing, as when no iris is found)."""
    rng = random.Random(seed)
    rows = []
    for offset in range(0, seconds, step):
        for participant in participants:
            rows.append(
                MetricRow(
                    meeting_id=meeting,
                    participant_id=participant,
                    time=start + timedelta(seconds=offset, microseconds=rng.randrange(1_000_000)),
                    attention_score=round(rng.uniform(0, 100), 2),
                    gaze_score=None if rng.random() < 0.2 else round(rng.uniform(0, 100), 2),
                    head_pose_score=round(rng.uniform(0, 100), 2),
                    eye_openness_score=round(rng.uniform(0, 100), 2),
                    is_looking_away=rng.random() < 0.3,
                    is_drowsy=rng.random() < 0.1,
                )
            )
    return rows


def expected_minutes(rows: Iterable[MetricRow]) -> dict[tuple[uuid.UUID, datetime], MinuteRow]:
    """The GROUP BY (participant, minute) of ``rows``, keyed (participant, bucket)."""
    groups: dict[tuple[uuid.UUID, uuid.UUID, datetime], list[MetricRow]] = defaultdict(list)
    for row in rows:
        bucket = row.time.astimezone(UTC).replace(second=0, microsecond=0)
        groups[(row.meeting_id, row.participant_id, bucket)].append(row)
    out = {}
    for (meeting, participant, bucket), members in groups.items():
        scores = [m.attention_score for m in members]
        gaze = [m.gaze_score for m in members if m.gaze_score is not None]
        head = [m.head_pose_score for m in members if m.head_pose_score is not None]
        out[(participant, bucket)] = MinuteRow(
            meeting_id=meeting,
            participant_id=participant,
            bucket=bucket,
            avg_attention=sum(scores) / len(scores),
            min_attention=min(scores),
            max_attention=max(scores),
            avg_gaze=sum(gaze) / len(gaze) if gaze else None,
            avg_head_pose=sum(head) / len(head) if head else None,
            sample_count=len(members),
        )
    return out


def assert_minutes_match(
    actual: Sequence[MinuteRow], expected: dict[tuple[uuid.UUID, datetime], MinuteRow]
) -> None:
    keys = [(row.participant_id, row.bucket) for row in actual]
    assert len(keys) == len(set(keys)), "a minute appears twice"
    assert set(keys) == set(expected), (
        f"missing {sorted(set(expected) - set(keys))[:3]}, extra {sorted(set(keys) - set(expected))[:3]}"
    )
    assert [row.bucket for row in actual] == sorted(row.bucket for row in actual), "not in bucket order"
    for row in actual:
        want = expected[(row.participant_id, row.bucket)]
        assert row.meeting_id == want.meeting_id
        assert row.sample_count == want.sample_count, row
        for name in ("avg_attention", "min_attention", "max_attention", "avg_gaze", "avg_head_pose"):
            got, ref = getattr(row, name), getattr(want, name)
            if ref is None:
                assert got is None, (name, row)
            else:
                assert got is not None and abs(got - ref) <= TOLERANCE, (name, got, ref)


def rollup_matches_group_by(store: AttentionMetricsStore, now: datetime) -> None:
    """Rows over several minutes of several days: the roll-up equals the direct GROUP BY, is
    idempotent, and per_minute shows rolled-up minutes plus the live tail without a gap."""
    meeting, other_meeting = uuid.uuid4(), uuid.uuid4()
    people = [uuid.uuid4(), uuid.uuid4()]
    minute = now.replace(second=0, microsecond=0)
    rows: list[MetricRow] = []
    for days_back, seed in ((2, 1), (1, 2)):  # earlier days: ten minutes each
        rows += series(meeting, people, minute - timedelta(days=days_back, minutes=30), 600, 7, seed)
    # Today: the last 6 minutes up to and including the current, incomplete minute.
    rows += series(meeting, people, minute - timedelta(minutes=6), 6 * 60 + now.second, 3, 3)
    rows = [row for row in rows if row.time < now]
    noise = series(other_meeting, people[:1], minute - timedelta(minutes=3), 120, 5, 4)
    assert store.write(rows) == len(rows)
    store.write(noise)
    assert store.write(rows[:5]) == 0  # a retried flush: skipped, not an error

    complete = [row for row in rows if row.time < minute]
    expected_complete = expected_minutes(complete)
    expected_noise = expected_minutes(row for row in noise if row.time < minute)
    written = store.rollup(now)
    assert written == len(expected_complete) + len(expected_noise)
    everything = (minute - timedelta(days=3), now + timedelta(minutes=5))
    first = store.per_minute(meeting, None, *everything)
    # The current minute is not complete, so not rolled up: it comes from the raw rows.
    assert_minutes_match(first, expected_minutes(rows))
    assert store.rollup(now) >= 0
    assert store.per_minute(meeting, None, *everything) == first  # idempotent

    one = store.per_minute(meeting, people[1], *everything)
    assert_minutes_match(one, {k: v for k, v in expected_minutes(rows).items() if k[0] == people[1]})

    # More rows: some late for the last rolled-up minute, the rest in new minutes.
    later = now + timedelta(minutes=2, seconds=30)
    late = series(meeting, people[:1], minute - timedelta(seconds=30), 20, 10, 5)
    fresh = series(meeting, people, now, int((later - now).total_seconds()), 4, 6)
    store.write(late + fresh)
    all_rows = rows + late + fresh
    # Tail without gap before the next roll-up (late rows of a rolled-up minute wait for it) ...
    tail = store.per_minute(meeting, None, minute, later + timedelta(minutes=1))
    tail_expected = {k: v for k, v in expected_minutes(rows + fresh).items() if k[1] >= minute}
    assert_minutes_match(tail, tail_expected)
    # ... and after it, everything, the late rows included (the overlap re-aggregates them).
    store.rollup(later)
    assert_minutes_match(store.per_minute(meeting, None, *everything), expected_minutes(all_rows))
    raw = store.raw(meeting, people[0], minute - timedelta(seconds=30), minute, 1000)
    assert len(raw) == len(
        [
            r
            for r in all_rows
            if r.participant_id == people[0] and minute - timedelta(seconds=30) <= r.time < minute
        ]
    )
    assert [r.time for r in raw] == sorted(r.time for r in raw)
    assert len(store.raw(meeting, None, *everything, limit=7)) == 7


def concurrent_rollups_agree(store: AttentionMetricsStore, now: datetime) -> None:
    """Two threads roll up the same minutes at once: no error, the result is the GROUP BY."""
    meeting = uuid.uuid4()
    people = [uuid.uuid4() for _ in range(3)]
    minute = now.replace(second=0, microsecond=0)
    rows = series(meeting, people, minute - timedelta(minutes=40), 40 * 60, 2, 7)
    store.write(rows)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            store.rollup(now)
        except BaseException as error:  # collected and re-raised in the test thread
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert_minutes_match(
        store.per_minute(meeting, None, minute - timedelta(hours=1), minute), expected_minutes(rows)
    )


def delete_meeting_erases_only_it(store: AttentionMetricsStore, now: datetime) -> None:
    """delete_meeting removes one meeting's raw rows and minutes, another meeting's stay."""
    gone, kept = uuid.uuid4(), uuid.uuid4()
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=5)
    gone_rows = series(gone, [uuid.uuid4()], start, 240, 4, 51)
    kept_rows = series(kept, [uuid.uuid4()], start, 240, 4, 52)
    store.write(gone_rows + kept_rows)
    store.rollup(now)
    assert store.delete_meeting(gone) == len(gone_rows)
    span = (start - timedelta(minutes=1), now + timedelta(minutes=1))
    assert store.per_minute(gone, None, *span) == []
    assert store.raw(gone, None, *span, limit=10) == []
    assert_minutes_match(store.per_minute(kept, None, *span), expected_minutes(kept_rows))
    assert store.delete_meeting(gone) == 0
