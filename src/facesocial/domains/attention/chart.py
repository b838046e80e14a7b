"""The attention-over-time chart of a recording, drawn with Pillow (matplotlib is no dependency).

One line per participant (track), attention 0..100 on the vertical axis, seconds of video on the
horizontal one, alert spans shaded behind the lines in their participant's colour, a legend
naming each participant. A line is broken where its track was not seen for more than
``gap_seconds`` (a face that left the picture has no score there).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

# Colour-blind-safe palette (Okabe & Ito, "Color Universal Design", 2008), cycled per track.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 114, 178),
    (213, 94, 0),
    (0, 158, 115),
    (204, 121, 167),
    (230, 159, 0),
    (86, 180, 233),
    (240, 228, 66),
    (0, 0, 0),
)
WIDTH, HEIGHT = 1200, 520
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 220, 50, 60  # plot margins (px): axis labels, legend, title


@dataclass(frozen=True, slots=True)
class Series:
    """One participant's line: label and (seconds, attention 0..100) points in time order."""

    label: str
    points: Sequence[tuple[float, float]]


@dataclass(frozen=True, slots=True)
class Span:
    """A shaded alert: the participant's label (for its colour), start and end in seconds."""

    label: str
    start_seconds: float
    end_seconds: float


def render_chart(
    series: Sequence[Series],
    spans: Sequence[Span],
    *,
    duration_seconds: float,
    gap_seconds: float,
    title: str = "Attention over time",
) -> bytes:
    """The chart as PNG bytes (``WIDTH`` x ``HEIGHT`` px, RGB). An empty ``series`` gives the
    axes and a "no faces" note."""
    image = Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(image, "RGBA")
    font, small = _font(16), _font(13)
    x0, y0, x1, y1 = _LEFT, _TOP, WIDTH - _RIGHT, HEIGHT - _BOTTOM
    span_s = max(duration_seconds, max((p[0] for s in series for p in s.points), default=0.0), 1.0)
    colours = {s.label: PALETTE[i % len(PALETTE)] for i, s in enumerate(series)}

    def x_of(seconds: float) -> float:
        return x0 + (x1 - x0) * min(max(seconds, 0.0), span_s) / span_s

    # The 0..100 scale spans the plot minus a margin below 0, so a line at 0 is drawn above the
    # x axis instead of vanishing into it.
    y_zero = y1 - 8

    def y_of(score: float) -> float:
        return y_zero - (y_zero - y0) * min(max(score, 0.0), 100.0) / 100.0

    for span in spans:
        r, g, b = colours.get(span.label, (128, 128, 128))
        left, right = x_of(span.start_seconds), x_of(span.end_seconds)
        draw.rectangle((left, y0, max(right, left + 2), y1), fill=(r, g, b, 45))
    # Grid and axes.
    for level in range(0, 101, 20):
        y = y_of(level)
        draw.line((x0, y, x1, y), fill=(225, 225, 225), width=1)
        _text(draw, (x0 - 8, y), str(level), small, anchor="rm")
    step = _nice_step(span_s)
    tick = 0.0
    while tick <= span_s + 1e-9:
        x = x_of(tick)
        draw.line((x, y1, x, y1 + 5), fill=(60, 60, 60), width=1)
        _text(draw, (x, y1 + 8), f"{tick:g}", small, anchor="mt")
        tick += step
    draw.line((x0, y0, x0, y1), fill=(60, 60, 60), width=2)
    draw.line((x0, y1, x1, y1), fill=(60, 60, 60), width=2)
    _text(draw, ((x0 + x1) / 2, HEIGHT - 12), "time (s)", font, anchor="mb")
    _vertical_label(image, "attention (0-100)", font, (14, (y0 + y1) / 2))
    _text(draw, ((x0 + x1) / 2, 16), title, _font(20), anchor="mt")
    # Lines, broken at gaps.
    for s in series:
        colour = colours[s.label]
        run: list[tuple[float, float]] = []
        previous: float | None = None
        for seconds, score in s.points:
            if previous is not None and seconds - previous > gap_seconds:
                _polyline(draw, run, colour)
                run = []
            run.append((x_of(seconds), y_of(score)))
            previous = seconds
        _polyline(draw, run, colour)
    # Legend.
    lx, ly = x1 + 20, y0
    for s in series:
        draw.rectangle((lx, ly + 4, lx + 18, ly + 14), fill=colours[s.label])
        _text(draw, (lx + 26, ly + 9), s.label, small, anchor="lm")
        ly += 24
    if spans:
        draw.rectangle((lx, ly + 4, lx + 18, ly + 14), fill=(128, 128, 128, 60))
        _text(draw, (lx + 26, ly + 9), "alert (shaded)", small, anchor="lm")
    if not series:
        _text(draw, ((x0 + x1) / 2, (y0 + y1) / 2), "no faces were found", font, anchor="mm")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _polyline(
    draw: ImageDraw.ImageDraw, run: list[tuple[float, float]], colour: tuple[int, int, int]
) -> None:
    if len(run) >= 2:
        draw.line(run, fill=colour, width=3, joint="curve")
    elif run:  # a lone point: a ringed dot large enough to see, so a track seen once still shows
        x, y = run[0]
        draw.ellipse((x - 5, y - 5, x + 5, y + 5), fill=colour, outline=(40, 40, 40), width=1)


def _vertical_label(
    image: Image.Image,
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    centre: tuple[float, float],
) -> None:
    """``text`` turned a quarter anticlockwise (read bottom to top), centred on ``centre``."""
    left, top, right, bottom = ImageDraw.Draw(image).textbbox((0, 0), text, font=font)
    label = Image.new("RGBA", (int(right - left) + 4, int(bottom - top) + 4), (255, 255, 255, 0))
    ImageDraw.Draw(label).text((2 - left, 2 - top), text, fill=(30, 30, 30, 255), font=font)
    turned = label.rotate(90, expand=True)
    x, y = int(centre[0] - turned.width / 2), int(centre[1] - turned.height / 2)
    image.paste(turned, (max(0, x), max(0, y)), turned)


def _nice_step(span: float) -> float:
    """A 1-2-5 tick step giving about 10 ticks over ``span`` seconds."""
    raw = span / 10
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return float(factor * magnitude)
    return float(10 * magnitude)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow ≥ 10.1 ships a scalable default font when FreeType is built in; else the bitmap one.
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError):
        return ImageFont.load_default()


def _text(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    anchor: str,
) -> None:
    try:
        draw.text(xy, text, fill=(30, 30, 30), font=font, anchor=anchor)
    except ValueError:  # the bitmap font takes no anchor
        draw.text(xy, text, fill=(30, 30, 30), font=font)
