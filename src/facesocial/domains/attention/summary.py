"""A meeting's attention summary from its per-minute metrics (document 004 ``meeting_summaries``).

Definitions (docs/attention.md "## REST", "Summary"):

* the meeting's score of a minute is the sample-weighted mean of its participants' per-minute
  averages (``sum(avg_attention * sample_count) / sum(sample_count)``), so a participant seen in
  more frames weighs more, as if every sample of the minute were averaged;
* ``avg_attention_score``: the sample-weighted mean over every minute (= the mean of every sample);
* ``min_attention_score`` / ``max_attention_score``: the lowest and highest meeting score of a
  minute (not of a single frame, where one blink would make the minimum 0 in every meeting);
* ``low_attention_segments``: the number of maximal runs of consecutive minutes whose meeting
  score is below ``settings.attention.low_attention_threshold``; a minute without samples ends a
  run (nobody was measured, so it is neither low nor a continuation).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

MINUTE = timedelta(minutes=1)


class MinuteSample(Protocol):
    """What the summary reads of a ``MinuteRow`` (store/attention_metrics.py)."""

    @property
    def bucket(self) -> datetime: ...

    @property
    def avg_attention(self) -> float | None: ...

    @property
    def sample_count(self) -> int: ...


@dataclass(frozen=True, slots=True)
class MeetingMinute:
    """The meeting's score of one minute: 0..100, from ``samples`` frames of all participants."""

    bucket: datetime
    score: float
    samples: int


@dataclass(frozen=True, slots=True)
class AttentionFigures:
    """Scores 0..100 rounded to 2 decimals; None when no metric was recorded."""

    avg_attention_score: float | None
    min_attention_score: float | None
    max_attention_score: float | None
    low_attention_segments: int
    minutes_measured: int


def meeting_minutes(rows: Iterable[MinuteSample]) -> list[MeetingMinute]:
    """Pool participants' minute rows into the meeting's minutes, oldest first."""
    weighted: dict[datetime, float] = {}
    samples: dict[datetime, int] = {}
    for row in rows:
        if row.avg_attention is None or row.sample_count <= 0:
            continue
        weighted[row.bucket] = weighted.get(row.bucket, 0.0) + float(row.avg_attention) * row.sample_count
        samples[row.bucket] = samples.get(row.bucket, 0) + int(row.sample_count)
    return [MeetingMinute(b, weighted[b] / samples[b], samples[b]) for b in sorted(weighted)]


def low_segments(minutes: Sequence[MeetingMinute], threshold: float) -> int:
    """Maximal runs of consecutive low minutes (score < threshold); a missing minute ends a run."""
    runs = 0
    previous_low: datetime | None = None
    for minute in minutes:
        if minute.score < threshold:
            if previous_low is None or minute.bucket - previous_low != MINUTE:
                runs += 1
            previous_low = minute.bucket
        else:
            previous_low = None
    return runs


def figures(rows: Iterable[MinuteSample], threshold: float) -> AttentionFigures:
    minutes = meeting_minutes(rows)
    if not minutes:
        return AttentionFigures(None, None, None, 0, 0)
    total = sum(m.samples for m in minutes)
    mean = sum(m.score * m.samples for m in minutes) / total
    return AttentionFigures(
        avg_attention_score=round(mean, 2),
        min_attention_score=round(min(m.score for m in minutes), 2),
        max_attention_score=round(max(m.score for m in minutes), 2),
        low_attention_segments=low_segments(minutes, threshold),
        minutes_measured=len(minutes),
    )


def duration_minutes(start: datetime | None, end: datetime | None) -> int | None:
    """Whole minutes from start to end, rounded half up (a 29 s meeting lasts 0 minutes)."""
    if start is None or end is None:
        return None
    seconds = max(0.0, (end - start).total_seconds())
    return math.floor(seconds / 60.0 + 0.5)
