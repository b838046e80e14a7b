"""The annotated preview of a counted video: a short H.264 MP4 of the first seconds.

Each sampled frame of the first ``seconds`` of the video (at the job's sample rate, so the clip
plays at real speed) is drawn with the zones (outlined), the lines (with an arrow on the side a
crossing ``in`` goes to), every detection's box (coloured and labelled by its track id; grey and
unlabelled when it belongs to no confirmed track) and, in the top-left corner, each counter's
totals at that moment (``door in 3 out 1``; zones ``queue in 2 out 1 inside 1``). The long side
is scaled to at most ``max_side`` pixels (sides rounded to even numbers, as yuv420p needs).

The frames are decoded a second time (:mod:`facesocial.video.frames`, the same slots as the job)
after the counting ran: the job keeps only detections in memory, never pictures. Encoding:
libx264 (PyAV's FFmpeg), preset ``veryfast``, CRF 28, ``+faststart`` so a browser starts playing
before the whole file arrives.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from facesocial.domains.counting.forms import LineSpec, ZoneSpec
from facesocial.video.frames import iter_frames
from facesocial.video.probe import VideoInfo

# Track colours (Okabe–Ito's colour-blind-safe palette, then a few more), cycled by track id.
_PALETTE = (
    (230, 159, 0),
    (86, 180, 233),
    (0, 158, 115),
    (240, 228, 66),
    (0, 114, 178),
    (213, 94, 0),
    (204, 121, 167),
    (255, 255, 255),
    (170, 255, 0),
    (255, 85, 85),
)
_UNTRACKED = (150, 150, 150)
# One colour per counting line (cycled), drawn on the line, its "in" arrow, its name tag and its
# counter row, so that two lines crossing in the middle of the picture are told apart.
_LINES = ((255, 40, 40), (255, 0, 255), (255, 255, 0), (255, 140, 0), (140, 140, 255), (0, 255, 140))
_ZONE = (40, 220, 255)
_CRF = "28"
_PREVIEW_FILE = "preview.mp4"


@dataclass(frozen=True, slots=True)
class FrameBoxes:
    """One sampled frame's detections: ``boxes`` (N, 4) xyxy source pixels, ``track_ids`` (N,)
    (0 = no confirmed track)."""

    boxes: npt.NDArray[np.float32]
    track_ids: npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class CounterEvent:
    """A counted event as the overlay needs it: when, which counter, which way."""

    timestamp_ms: int
    line: str | None
    zone: str | None
    direction: str  # "in" | "out"


def render_preview(
    path: Path,
    info: VideoInfo,
    sample_fps: float,
    frames: Mapping[int, FrameBoxes],
    lines: Sequence[LineSpec],
    zones: Sequence[ZoneSpec],
    events: Sequence[CounterEvent],
    *,
    seconds: float,
    max_side: int,
) -> bytes | None:
    """The preview MP4's bytes, or None when ``seconds`` is 0 or no frame decodes.

    ``frames``: the job's detections by source frame index (a frame missing from it is drawn
    without boxes). ``events`` in time order. Raises what PyAV raises on an encoder failure.
    """
    count = math.floor(seconds * sample_fps + 1e-6)
    if count <= 0:
        return None
    scale = min(1.0, max_side / max(info.width, info.height))
    width = max(2, int(info.width * scale) // 2 * 2)
    height = max(2, int(info.height * scale) // 2 * 2)
    sx, sy = width / info.width, height / info.height
    overlay = _Overlay(lines, zones, events, sx, sy, height)
    # Written beside the video (the job's spool folder): +faststart moves the index to the front
    # by rewriting the file, which needs a real file, not a buffer.
    target = path.with_name(_PREVIEW_FILE)
    written = 0
    # The frame rate as a fraction (e.g. 5/1, 2.5 -> 5/2): the clip plays at the video's speed.
    rate = Fraction(sample_fps).limit_denominator(1000)
    try:
        written = _encode(target, path, info, sample_fps, count, rate, (width, height), frames, overlay)
        return target.read_bytes() if written else None
    finally:
        target.unlink(missing_ok=True)


def _encode(
    target: Path,
    path: Path,
    info: VideoInfo,
    sample_fps: float,
    count: int,
    rate: Fraction,
    size: tuple[int, int],
    frames: Mapping[int, FrameBoxes],
    overlay: _Overlay,
) -> int:
    width, height = size
    written = 0
    with av.open(str(target), mode="w", format="mp4", options={"movflags": "+faststart"}) as output:
        stream = output.add_stream("libx264", rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "veryfast", "crf": _CRF}
        with iter_frames(path, info, sample_fps, count) as reader:
            for frame in reader:
                picture = Image.fromarray(frame.rgb)
                if picture.size != (width, height):
                    picture = picture.resize((width, height), Image.Resampling.BILINEAR)
                overlay.draw(picture, frames.get(frame.index), frame.timestamp_ms)
                video_frame = av.VideoFrame.from_ndarray(np.asarray(picture), format="rgb24")
                for packet in stream.encode(video_frame):
                    output.mux(packet)
                written += 1
        for packet in stream.encode(None):
            output.mux(packet)
    return written


class _Overlay:
    def __init__(
        self,
        lines: Sequence[LineSpec],
        zones: Sequence[ZoneSpec],
        events: Sequence[CounterEvent],
        sx: float,
        sy: float,
        height: int,
    ) -> None:
        self.lines = lines
        self.zones = zones
        self.events = events
        self.times = [e.timestamp_ms for e in events]
        self.sx, self.sy = sx, sy
        self.font = _font(max(10, height // 36))

    def draw(self, picture: Image.Image, boxes: FrameBoxes | None, timestamp_ms: int) -> None:
        pen = ImageDraw.Draw(picture)
        for zone in self.zones:
            pen.polygon([self._at(p) for p in zone.polygon], outline=_ZONE, width=2)
        for index, line in enumerate(self.lines):
            colour = _LINES[index % len(_LINES)]
            start, end = self._at(line.start), self._at(line.end)
            pen.line([start, end], fill=colour, width=3)
            # Arrows at different places along their lines (1/3, 2/3 for two lines, ...): lines
            # that cross in the middle would otherwise hide each other's arrow.
            self._in_arrow(pen, start, end, colour, (index + 1) / (len(self.lines) + 1))
            self._tag(pen, start, line.name, colour)
        if boxes is not None:
            for box, track_id in zip(boxes.boxes, boxes.track_ids, strict=True):
                x1, y1 = self._at((float(box[0]), float(box[1])))
                x2, y2 = self._at((float(box[2]), float(box[3])))
                colour = _PALETTE[(int(track_id) - 1) % len(_PALETTE)] if track_id else _UNTRACKED
                pen.rectangle([x1, y1, x2, y2], outline=colour, width=2)
                if track_id:
                    label = f"#{int(track_id)}"
                    left, top, right, bottom = pen.textbbox((x1, y1), label, font=self.font)
                    lifted = top - (bottom - top) - 2
                    pen.rectangle([left, lifted, right + 2, top], fill=colour)
                    pen.text((x1 + 1, lifted), label, fill=(0, 0, 0), font=self.font)
        self._counters(pen, timestamp_ms)

    def _at(self, point: tuple[float, float]) -> tuple[float, float]:
        return (point[0] * self.sx, point[1] * self.sy)

    def _tag(
        self, pen: ImageDraw.ImageDraw, at: tuple[float, float], text: str, colour: tuple[int, int, int]
    ) -> None:
        """The line's name in its colour at its start point (kept inside the picture)."""
        width, height = pen.im.size
        left, top, right, bottom = pen.textbbox((0, 0), text, font=self.font)
        x = min(max(2.0, at[0] + 4), max(2.0, width - (right - left) - 4))
        y = min(max(2.0, at[1] + 4), max(2.0, height - (bottom - top) - 6))
        box = pen.textbbox((x, y), text, font=self.font)
        pen.rectangle([box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1], fill=colour)
        pen.text((x, y), text, fill=(0, 0, 0), font=self.font)

    def _in_arrow(
        self,
        pen: ImageDraw.ImageDraw,
        start: tuple[float, float],
        end: tuple[float, float],
        colour: tuple[int, int, int],
        along: float = 0.5,
    ) -> None:
        # "in" goes from the left of start→end to its right; on the image (y down) the right-hand
        # normal of (dx, dy) is (-dy, dx). A short arrow from a point ``along`` the line (0..1 from
        # start) points that way.
        dx, dy = end[0] - start[0], end[1] - start[1]
        length = math.hypot(dx, dy) or 1.0
        nx, ny = -dy / length, dx / length
        mx, my = start[0] + dx * along, start[1] + dy * along
        tip = (mx + nx * 14, my + ny * 14)
        pen.line([(mx, my), tip], fill=colour, width=2)
        pen.polygon(
            [
                (tip[0] + nx * 6, tip[1] + ny * 6),
                (tip[0] - ny * 5, tip[1] + nx * 5),
                (tip[0] + ny * 5, tip[1] - nx * 5),
            ],
            fill=colour,
        )

    def _counters(self, pen: ImageDraw.ImageDraw, timestamp_ms: int) -> None:
        upto = bisect.bisect_right(self.times, timestamp_ms)
        lines = {line.name: [0, 0] for line in self.lines}
        zones = {zone.name: [0, 0] for zone in self.zones}
        for event in self.events[:upto]:
            counts = lines.get(event.line or "") if event.line is not None else zones.get(event.zone or "")
            if counts is not None:
                counts[0 if event.direction == "in" else 1] += 1
        # Each row in the colour of what it counts: a line's own, the zones', white for the clock.
        rows = [
            (f"{name}  in {c[0]}  out {c[1]}", _LINES[i % len(_LINES)])
            for i, (name, c) in enumerate(lines.items())
        ]
        rows += [(f"{name}  in {c[0]}  out {c[1]}  inside {c[0] - c[1]}", _ZONE) for name, c in zones.items()]
        rows.append((f"t {timestamp_ms / 1000:.1f} s", (255, 255, 255)))
        y = 4.0
        for row, colour in rows:
            left, top, right, bottom = pen.textbbox((6, y), row, font=self.font)
            pen.rectangle([left - 3, top - 2, right + 3, bottom + 2], fill=(0, 0, 0))
            pen.text((6, y), row, fill=colour, font=self.font)
            y = bottom + 5


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError, ImportError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()
