"""Recording results (alert spans, per-track durations) and the chart, on hand-made frames."""

from __future__ import annotations

import io

from PIL import Image

from facesocial.analytics.attention import AlertEvent
from facesocial.domains.attention.chart import PALETTE, Series, Span, render_chart
from facesocial.domains.attention.recording_results import FrameRecord, alert_spans, summarize


def _event(track: int, state: str, severity: str, started: int, at: int) -> AlertEvent:
    return AlertEvent(track, "looking_away", severity, state, started, at, (at - started) / 1000, "away")  # type: ignore[arg-type]


def _face(track: int, score: float, away: bool = False) -> dict[str, object]:
    return {"track_id": track, "attention_score": score, "is_looking_away": away, "is_drowsy": False}


def test_events_fold_into_spans_and_an_unclosed_alert_ends_with_the_video() -> None:
    events = [
        _event(1, "opened", "info", 1000, 4000),
        _event(2, "opened", "info", 2000, 5000),
        _event(1, "escalated", "warning", 1000, 11000),
        _event(1, "closed", "warning", 1000, 12000),
    ]
    first, second = alert_spans(events, end_ms=20000)
    assert (first.track_id, first.severity, first.started_ms, first.ended_ms, first.closed) == (
        1,
        "warning",
        1000,
        12000,
        True,
    )
    assert (second.track_id, second.ended_ms, second.closed) == (2, 20000, False)
    assert second.as_dict({2: "Participant 2"})["duration_seconds"] == 18.0


def test_summary_weighs_frames_by_the_time_to_the_next_one() -> None:
    # 5 frames/s; track 7 looks away in two frames, then vanishes for 3 s (the gap is not credited).
    frames = [
        FrameRecord(0, [_face(7, 80.0), _face(9, 40.0)]),
        FrameRecord(200, [_face(7, 20.0, away=True)]),
        FrameRecord(400, [_face(7, 10.0, away=True)]),
        FrameRecord(3400, [_face(7, 90.0)]),
    ]
    results = summarize(frames, [], duration_seconds=3.6, sample_fps=5.0, processing_seconds=1.0)
    seven, nine = results["tracks"]
    assert (seven["participant_label"], nine["participant_label"]) == ("Participant 1", "Participant 2")
    # 0.2 s, then the 3 s gap capped at two sampling intervals (0.4 s).
    assert seven["looking_away_seconds"] == 0.6
    assert (seven["min_attention"], seven["max_attention"], seven["mean_attention"]) == (10.0, 90.0, 50.0)
    assert results["overall"]["mean_attention"] == 48.0 and results["frames_analyzed"] == 4
    assert frames[0].avg_attention == 60.0 and FrameRecord(5, []).avg_attention is None


def test_the_chart_draws_lines_and_shades_alerts() -> None:
    series = [Series("Participant 1", [(t / 5, 70.0) for t in range(100)])]
    png = render_chart(series, [Span("Participant 1", 5.0, 10.0)], duration_seconds=20.0, gap_seconds=1.0)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = {colour for _, colour in image.getcolors(maxcolors=1 << 20) or []}
    assert PALETTE[0] in colours
    # Inside the span, away from the line: the participant's colour blended on white.
    x = 70 + (1200 - 220 - 70) * 7.5 / 20
    r, g, b = image.getpixel((int(x), 420))  # type: ignore[misc]
    assert b > r and (r, g, b) != (255, 255, 255)
    empty = Image.open(io.BytesIO(render_chart([], [], duration_seconds=0.0, gap_seconds=1.0)))
    assert empty.size == (1200, 520)
