"""The counting lines and zones of an upload: parsed from their JSON fields and checked strictly.

``lines``: ``[{"name": "door", "start": [x, y], "end": [x, y]}]`` in source-video pixels (x to the
right, y down, origin at the top-left corner of the upright picture). ``in`` is a crossing from the
left of the directed segment start→end to its right, as seen on the image (analytics/counting.py
has the worked example). ``zones``: ``[{"name": "queue", "polygon": [[x, y], ...]}]``.

Every rule refuses with a stable code and 422: ``INVALID_COUNTING_LINES`` or
``INVALID_COUNTING_ZONES``, with ``details = {"field", "index", "reason"}`` (``index`` is the
item's place in its list, None for the list itself). The rules:

* the field is a JSON array (absent or empty text = no lines / zones) of at most
  ``counting.max_lines`` / ``max_zones`` objects with exactly the keys above;
* ``name``: text of 1..100 characters after trimming, valid Unicode (no lone surrogate such as
  the JSON escape ``"\\ud800"``), no character of the Unicode categories Cc, Cf, Cs, Zl or Zp
  (controls, format characters such as U+202E or U+200B, line separators), unique in its list;
* a point: ``[x, y]`` of two finite numbers (not booleans), inside the frame once its size is
  known: ``0 <= x <= width`` and ``0 <= y <= height``;
* a line: start and end at least 1 pixel apart;
* a polygon: 3..``counting.max_polygon_points`` points, area at least 1 square pixel, and no
  two non-adjacent edges touching (a self-crossing "bow tie" has no inside).
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from facesocial import errors

MAX_NAME = 100
Point = tuple[float, float]
_Kind = Literal["lines", "zones"]
# Unicode general categories refused in names (Unicode Standard §4.5): Cc controls (C0 and C1,
# e.g. U+0085, U+009B), Cf format characters (bidi overrides such as U+202E, zero-width U+200B),
# Cs surrogates, Zl/Zp line and paragraph separators (U+2028, U+2029). Each makes a name look
# different from what it is, or breaks lines, in responses, logs and the preview.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


@dataclass(frozen=True, slots=True)
class LineSpec:
    """A checked counting line (source pixels)."""

    name: str
    start: Point
    end: Point

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "start": list(self.start), "end": list(self.end)}


@dataclass(frozen=True, slots=True)
class ZoneSpec:
    """A checked counting zone: a simple polygon (source pixels), as given (either winding)."""

    name: str
    polygon: tuple[Point, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "polygon": [list(p) for p in self.polygon]}


@dataclass(frozen=True, slots=True)
class FrameBounds:
    """The frame the points must fall in: the upright picture's width and height (pixels)."""

    width: float
    height: float


def parse_lines(raw: str | None, bounds: FrameBounds, max_lines: int) -> tuple[LineSpec, ...]:
    """The ``lines`` field. Raises ``INVALID_COUNTING_LINES`` (422); see the module docstring."""
    items = _items(raw, "lines", max_lines)
    lines: list[LineSpec] = []
    for index, item in enumerate(items):
        _keys(item, {"name", "start", "end"}, "lines", index)
        start = _point(item["start"], bounds, "lines", index, "start")
        end = _point(item["end"], bounds, "lines", index, "end")
        if math.dist(start, end) < 1.0:
            raise _fail("lines", index, "start and end must be at least 1 pixel apart")
        lines.append(LineSpec(_name(item["name"], "lines", index), start, end))
    _unique([line.name for line in lines], "lines")
    return tuple(lines)


def parse_zones(
    raw: str | None, bounds: FrameBounds, max_zones: int, max_points: int
) -> tuple[ZoneSpec, ...]:
    """The ``zones`` field. Raises ``INVALID_COUNTING_ZONES`` (422); see the module docstring."""
    items = _items(raw, "zones", max_zones)
    zones: list[ZoneSpec] = []
    for index, item in enumerate(items):
        _keys(item, {"name", "polygon"}, "zones", index)
        polygon = item["polygon"]
        if not isinstance(polygon, list) or not 3 <= len(polygon) <= max_points:
            raise _fail("zones", index, f"polygon must be a list of 3 to {max_points} points")
        points = tuple(_point(p, bounds, "zones", index, "polygon") for p in polygon)
        if self_intersects(points):
            raise _fail("zones", index, "polygon edges cross each other")
        if abs(polygon_area(points)) < 1.0:
            raise _fail("zones", index, "polygon has no area (its points are on one line)")
        zones.append(ZoneSpec(_name(item["name"], "zones", index), points))
    _unique([zone.name for zone in zones], "zones")
    return tuple(zones)


def polygon_area(points: Sequence[Point]) -> float:
    """Signed area by the shoelace formula (square pixels; positive when clockwise on the image,
    whose y axis points down)."""
    total = 0.0
    for (x1, y1), (x2, y2) in zip(points, [*points[1:], points[0]], strict=True):
        total += x1 * y2 - x2 * y1
    return total / 2.0


def self_intersects(points: Sequence[Point]) -> bool:
    """Whether two non-adjacent edges of the closed polygon touch or cross (O(n²), n ≤ a few
    dozen), or a point repeats."""
    n = len(points)
    if len(set(points)) != n:
        return True
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # neighbours share a vertex
            if _segments_touch(*edges[i], *edges[j]):
                return True
    return False


def _segments_touch(a: Point, b: Point, c: Point, d: Point) -> bool:
    def orient(p: Point, q: Point, r: Point) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    def on_segment(p: Point, q: Point, r: Point) -> bool:
        return min(p[0], q[0]) <= r[0] <= max(p[0], q[0]) and min(p[1], q[1]) <= r[1] <= max(p[1], q[1])

    o1, o2, o3, o4 = orient(a, b, c), orient(a, b, d), orient(c, d, a), orient(c, d, b)
    if ((o1 > 0 and o2 < 0) or (o1 < 0 and o2 > 0)) and ((o3 > 0 and o4 < 0) or (o3 < 0 and o4 > 0)):
        return True
    return (
        (o1 == 0 and on_segment(a, b, c))
        or (o2 == 0 and on_segment(a, b, d))
        or (o3 == 0 and on_segment(c, d, a))
        or (o4 == 0 and on_segment(c, d, b))
    )


def _items(raw: str | None, kind: _Kind, limit: int) -> list[dict[str, Any]]:
    if raw is None or not raw.strip():
        return []
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise _fail(kind, None, "not valid JSON") from None
    if not isinstance(value, list):
        raise _fail(kind, None, "must be a JSON array")
    if len(value) > limit:
        raise _fail(kind, None, f"at most {limit} {kind} per video")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise _fail(kind, index, "each item must be a JSON object")
    return value


def _keys(item: dict[str, Any], expected: set[str], kind: _Kind, index: int) -> None:
    missing = sorted(expected - item.keys())
    extra = sorted(item.keys() - expected)
    if missing:
        raise _fail(kind, index, f"missing {', '.join(missing)}")
    if extra:
        # A key may hold a lone surrogate (valid JSON text), which no response could encode.
        shown = (str(k)[:40].encode("utf-8", "backslashreplace").decode("utf-8") for k in extra)
        raise _fail(kind, index, f"unknown key {', '.join(shown)}")


def _name(value: object, kind: _Kind, index: int) -> str:
    if not isinstance(value, str):
        raise _fail(kind, index, "name must be text")
    # Only spaces are trimmed: str.strip would also drop controls such as U+0085 or "\n", which
    # are refused below wherever they stand.
    name = value.strip(" ")
    if not 1 <= len(name) <= MAX_NAME:
        raise _fail(kind, index, f"name must have 1 to {MAX_NAME} characters")
    try:
        # "\\ud800" is valid JSON that json.loads turns into a lone surrogate: no database,
        # response or log line can encode it, so refuse it before anything is stored.
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise _fail(kind, index, "name must be valid Unicode text (no lone surrogates)") from None
    if any(unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in name):
        raise _fail(kind, index, "name must not contain control, format or line-separator characters")
    return name


def _point(value: object, bounds: FrameBounds, kind: _Kind, index: int, what: str) -> Point:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, int | float) for v in value)
    ):
        raise _fail(kind, index, f"{what}: a point is [x, y], two numbers")
    try:
        x, y = float(value[0]), float(value[1])
    except OverflowError:  # an integer beyond float range
        raise _fail(kind, index, f"{what}: coordinates must be finite") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise _fail(kind, index, f"{what}: coordinates must be finite")
    if not (0.0 <= x <= bounds.width and 0.0 <= y <= bounds.height):
        raise _fail(
            kind,
            index,
            f"{what}: ({x:g}, {y:g}) is outside the {bounds.width:g}x{bounds.height:g} frame",
        )
    return (x, y)


def _unique(names: list[str], kind: _Kind) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            raise _fail(kind, index, f"name {name!r} is used twice")
        seen.add(name)


def _fail(kind: _Kind, index: int | None, reason: str) -> errors.FaceSocialError:
    error = errors.InvalidCountingLinesError if kind == "lines" else errors.InvalidCountingZonesError
    where = f"{kind}[{index}]" if index is not None else kind
    return error(f"{where}: {reason}", field=kind, index=index, reason=reason)
