"""The lines and zones of a counting upload: what is accepted, and every refusal's code and reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from facesocial import errors
from facesocial.domains.counting.forms import (
    FrameBounds,
    LineSpec,
    ZoneSpec,
    parse_lines,
    parse_zones,
    polygon_area,
    self_intersects,
)

FRAME = FrameBounds(480, 360)


def lines(value: Any) -> tuple[LineSpec, ...]:
    return parse_lines(value if isinstance(value, str) else json.dumps(value), FRAME, max_lines=3)


def zones(value: Any) -> tuple[ZoneSpec, ...]:
    raw = value if isinstance(value, str) else json.dumps(value)
    return parse_zones(raw, FRAME, max_zones=2, max_points=6)


def test_good_lines_and_zones_are_parsed_as_given() -> None:
    parsed = lines(
        [
            {"name": " door ", "start": [0, 180], "end": [480, 180.5]},
            {"name": "b", "start": [1, 2], "end": [3, 4]},
        ]
    )
    assert parsed == (LineSpec("door", (0.0, 180.0), (480.0, 180.5)), LineSpec("b", (1.0, 2.0), (3.0, 4.0)))
    assert parsed[0].as_dict() == {"name": "door", "start": [0.0, 180.0], "end": [480.0, 180.5]}
    parsed_zones = zones([{"name": "queue", "polygon": [[10, 10], [100, 10], [100, 80], [10, 80]]}])
    assert parsed_zones == (ZoneSpec("queue", ((10.0, 10.0), (100.0, 10.0), (100.0, 80.0), (10.0, 80.0))),)


@pytest.mark.parametrize("raw", [None, "", "  ", "[]"])
def test_absent_or_empty_means_none(raw: str | None) -> None:
    assert parse_lines(raw, FRAME, 3) == ()
    assert parse_zones(raw, FRAME, 2, 6) == ()


LINE_CASES: list[tuple[str, Any, str]] = [
    ("not json", "[{", "not valid JSON"),
    ("not a list", {"name": "a"}, "must be a JSON array"),
    ("too many", [{"name": str(i), "start": [0, 0], "end": [9, 9]} for i in range(4)], "at most 3"),
    ("item not an object", ["door"], "JSON object"),
    ("missing end", [{"name": "a", "start": [0, 0]}], "missing end"),
    ("unknown key", [{"name": "a", "start": [0, 0], "end": [9, 9], "dir": "in"}], "unknown key dir"),
    ("name not text", [{"name": 5, "start": [0, 0], "end": [9, 9]}], "name must be text"),
    ("empty name", [{"name": "  ", "start": [0, 0], "end": [9, 9]}], "1 to 100"),
    ("long name", [{"name": "x" * 101, "start": [0, 0], "end": [9, 9]}], "1 to 100"),
    ("control char", [{"name": "a\nb", "start": [0, 0], "end": [9, 9]}], "control"),
    ("duplicate", [{"name": "a", "start": [0, 0], "end": [9, 9]}] * 2, "used twice"),
    ("three coords", [{"name": "a", "start": [0, 0, 0], "end": [9, 9]}], "two numbers"),
    ("string coord", [{"name": "a", "start": ["0", 0], "end": [9, 9]}], "two numbers"),
    ("bool coord", [{"name": "a", "start": [True, 0], "end": [9, 9]}], "two numbers"),
    ("NaN", '[{"name": "a", "start": [NaN, 0], "end": [9, 9]}]', "finite"),
    ("Infinity", '[{"name": "a", "start": [Infinity, 0], "end": [9, 9]}]', "finite"),
    ("huge int", '[{"name": "a", "start": [1' + "0" * 400 + ', 0], "end": [9, 9]}]', "finite"),
    ("negative", [{"name": "a", "start": [-1, 0], "end": [9, 9]}], "outside the 480x360 frame"),
    ("beyond width", [{"name": "a", "start": [0, 0], "end": [481, 9]}], "outside"),
    ("beyond height", [{"name": "a", "start": [0, 0], "end": [9, 360.5]}], "outside"),
    ("a point", [{"name": "a", "start": [5, 5], "end": [5.5, 5.5]}], "1 pixel apart"),
]


@pytest.mark.parametrize(("case", "value", "reason"), LINE_CASES, ids=[c[0] for c in LINE_CASES])
def test_bad_lines_are_refused_with_their_reason(case: str, value: Any, reason: str) -> None:
    with pytest.raises(errors.InvalidCountingLinesError) as caught:
        lines(value)
    assert caught.value.code == "INVALID_COUNTING_LINES" and caught.value.status == 422
    assert reason in caught.value.message, caught.value.message
    assert caught.value.details["field"] == "lines"


SQUARE = [[10, 10], [100, 10], [100, 80], [10, 80]]
ZONE_CASES: list[tuple[str, Any, str]] = [
    ("too many", [{"name": str(i), "polygon": SQUARE} for i in range(3)], "at most 2"),
    ("two points", [{"name": "z", "polygon": [[0, 0], [9, 9]]}], "3 to 6 points"),
    ("seven points", [{"name": "z", "polygon": [[i, i * i % 7] for i in range(7)]}], "3 to 6 points"),
    ("not a list", [{"name": "z", "polygon": "square"}], "3 to 6 points"),
    ("collinear", [{"name": "z", "polygon": [[0, 0], [10, 10], [20, 20]]}], "no area"),
    ("bow tie", [{"name": "z", "polygon": [[0, 0], [100, 100], [100, 0], [0, 100]]}], "cross"),
    ("repeated point", [{"name": "z", "polygon": [[0, 0], [100, 0], [100, 100], [100, 0]]}], "cross"),
    ("outside", [{"name": "z", "polygon": [[0, 0], [500, 0], [0, 100]]}], "outside"),
    ("duplicate", [{"name": "z", "polygon": SQUARE}] * 2, "used twice"),
    ("missing polygon", [{"name": "z"}], "missing polygon"),
]


@pytest.mark.parametrize(("case", "value", "reason"), ZONE_CASES, ids=[c[0] for c in ZONE_CASES])
def test_bad_zones_are_refused_with_their_reason(case: str, value: Any, reason: str) -> None:
    with pytest.raises(errors.InvalidCountingZonesError) as caught:
        zones(value)
    assert caught.value.code == "INVALID_COUNTING_ZONES" and caught.value.status == 422
    assert reason in caught.value.message, caught.value.message
    assert caught.value.details["field"] == "zones"


def test_a_line_and_a_zone_may_share_a_name() -> None:
    # Events name the line or the zone in separate columns: the lists are separate namespaces.
    assert lines([{"name": "door", "start": [0, 0], "end": [9, 9]}])[0].name == "door"
    assert zones([{"name": "door", "polygon": SQUARE}])[0].name == "door"


@pytest.mark.parametrize(
    ("points", "area", "crossing"),
    [
        ([(0, 0), (10, 0), (10, 10), (0, 10)], 100.0, False),  # clockwise on the image (y down)
        ([(0, 0), (0, 10), (10, 10), (10, 0)], -100.0, False),
        ([(0, 0), (10, 10), (10, 0), (0, 10)], 0.0, True),  # bow tie: the halves cancel
        ([(0, 0), (20, 0), (20, 20), (10, 5), (0, 20)], 250.0, False),  # concave is fine
    ],
)
def test_polygon_geometry(points: list[tuple[float, float]], area: float, crossing: bool) -> None:
    assert polygon_area(points) == pytest.approx(area)
    assert self_intersects(points) is crossing
