"""Where a fixed-input detector looks: a pyramid of bounded working copies cut into tiles.

A detector with a small square input (BlazeFace: 192²) finds faces of about ``min_face`` to
``max_face`` pixels *in its input*. One pass over a letterboxed photo therefore only sees faces
larger than ``min_face / 192`` of the photo's long side (≈ 7 %). To find every face of at
least ``target`` pixels in the photo, the photo is also looked at through *levels*: working
copies scaled so that a ``target`` face measures ``min_face`` pixels, then 1/``ratio`` of that,
... up to the whole-photo pass, each cut into overlapping tiles of the detector's input side.

* A level answers for faces of ``min_face`` .. ``min_face·ratio`` pixels at its scale; larger
  faces are the next coarser level's. Tiles overlap by ``overlap`` ≥ ``min_face·ratio`` pixels,
  so every face a level answers for lies wholly inside at least one of its tiles, and a
  detection touching a tile's inner edge (a face cut in two) can be dropped.
* Memory: the finest working copy is at most ``max_working_pixels``; nothing at the photo's
  full resolution is ever copied, padded or rotated.

The planner is pure arithmetic (unit-tested); the detector does the pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The whole-photo pass still finds most faces a little below ``min_face`` (BlazeFace: 13 px
# 84 %, 16 px 95 % on real photos): no level is added to gain less than this factor.
_WHOLE_SLACK = 1.25


@dataclass(frozen=True, slots=True)
class TileGeometry:
    """What a tiled detector needs to know about its model (pixels are model-input pixels)."""

    side: int  # the square input side
    min_face: float  # the smallest face found reliably
    ratio: float  # scale step between levels: a level covers min_face .. min_face·ratio
    overlap: int  # tile overlap (≥ min_face·ratio: a covered face fits wholly in one tile)


@dataclass(frozen=True, slots=True)
class Tile:
    """A window ``x0..x1, y0..y1`` of a level's working copy (may be smaller than the side)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


@dataclass(frozen=True, slots=True)
class Level:
    """One working copy: the photo scaled by ``scale`` to ``width``×``height``, and its tiles."""

    scale: float
    width: int
    height: int
    tiles: tuple[Tile, ...]

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """The levels, finest first; the whole-photo letterboxed pass is not listed (always run)."""

    target_face: float  # photo pixels: the smallest face the plan is built to find
    levels: tuple[Level, ...]

    @property
    def tile_count(self) -> int:
        return sum(len(level.tiles) for level in self.levels)


def target_face_size(width: int, height: int, min_face_size: int, small_face_fraction: float) -> float:
    """Smallest face worth searching for: ``small_face_fraction`` of the short side, at least
    ``min_face_size`` (smaller faces are dropped anyway)."""
    return max(float(min_face_size), small_face_fraction * min(width, height), 1.0)


def axis_starts(length: int, side: int, overlap: int) -> list[int]:
    """Tile starts covering ``0..length`` with tiles of ``side`` overlapping by ≥ ``overlap``.

    The tiles are spread evenly, the first at 0 and the last ending at ``length``.
    """
    if length <= side:
        return [0]
    stride = side - overlap
    count = math.ceil((length - overlap) / stride)
    count = max(count, 2)
    span = length - side
    return [round(i * span / (count - 1)) for i in range(count)]


def plan_search(
    width: int,
    height: int,
    target_face: float,
    geometry: TileGeometry,
    max_working_pixels: int,
) -> SearchPlan:
    """Levels needed so that faces of ``target_face`` photo pixels and up are found.

    Level scales are ``min_face/target_face``, then divided by ``ratio`` until the whole-photo
    pass (scale ``side / max(width, height)``) covers the rest. Scales never exceed 1 (no
    upsampling of tiles) and the finest copy is shrunk to ``max_working_pixels`` if needed.
    """
    whole = geometry.side / max(width, height)
    finest = min(1.0, geometry.min_face / target_face)
    pixel_cap = math.sqrt(max_working_pixels / (width * height))
    finest = min(finest, pixel_cap)
    levels: list[Level] = []
    scale = finest
    # The whole-photo pass covers faces ≥ min_face/whole; a level is needed while the faces it
    # answers for (≥ min_face/scale) are smaller than that by more than ``_WHOLE_SLACK``.
    while scale > whole * _WHOLE_SLACK:
        level_w, level_h = max(1, round(width * scale)), max(1, round(height * scale))
        tiles = tuple(
            Tile(x, y, min(x + geometry.side, level_w), min(y + geometry.side, level_h))
            for y in axis_starts(level_h, geometry.side, geometry.overlap)
            for x in axis_starts(level_w, geometry.side, geometry.overlap)
        )
        levels.append(Level(scale, level_w, level_h, tiles))
        scale /= geometry.ratio
    return SearchPlan(target_face=target_face, levels=tuple(levels))
