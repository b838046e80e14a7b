"""Which container a file claims to be, and whether its top-level structure is all there.

FFmpeg says "Invalid data found" both for garbage and for an MP4 whose ``moov`` box was cut off;
a client deserves to hear which. This module reads the first bytes and the top-level structure
(never the media data) of the containers whose structure declares its own length:

* ISO BMFF (MP4, MOV, 3GP; ISO/IEC 14496-12 §4.2): top-level boxes are walked; a box running past
  the end of the file, or no ``moov`` box, means truncated;
* Matroska/WebM (RFC 9559 §4-§6): the ``Segment`` element's size against the file size (an
  "unknown" size, used by live recorders, says nothing);
* AVI (RIFF): the first RIFF chunk's size against the file size;
* MPEG-TS and Ogg: recognised by their sync bytes only (no declared length).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# Box types that may open an ISO BMFF / QuickTime file (QuickTime files may lack ``ftyp``).
_BMFF_FIRST_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"styp"})
_BMFF_MAX_BOXES = 100_000  # a walk over more top-level boxes than this is no real file
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_SEGMENT = b"\x18\x53\x80\x67"
_EBML_DOCTYPE = b"\x42\x82"
_TS_PACKET = 188


@dataclass(frozen=True, slots=True)
class ContainerShape:
    """What the first bytes say.

    ``kind``: "mp4", "mov", "matroska", "webm", "avi", "mpegts", "ogg", or None when no known
    signature matches. ``complete``: False when the declared structure runs past the end of the
    file (or is malformed), True when it is all there, None when the container does not say.
    ``detail``: a short reason when ``complete`` is False.
    """

    kind: str | None
    complete: bool | None
    detail: str = ""


def sniff_container(path: Path) -> ContainerShape:
    """Recognise ``path``'s container from its signature and check its top-level structure.

    Reads at most a few KiB per top-level box header; never raises for any content (an
    unreadable file is the caller's I/O error).
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(64)
        if len(head) >= 8 and head[4:8] in _BMFF_FIRST_BOXES:
            return _walk_bmff(handle, size)
        if head.startswith(_EBML_MAGIC):
            return _matroska(handle, size)
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        declared = 8 + struct.unpack("<I", head[4:8])[0]
        if declared > size:
            detail = f"the RIFF chunk declares {declared} bytes, the file has {size}"
            return ContainerShape("avi", False, detail)
        return ContainerShape("avi", True)
    if head[:4] == b"OggS":
        return ContainerShape("ogg", None)
    if len(head) > 0 and head[0] == 0x47 and _ts_sync(path, size):
        return ContainerShape("mpegts", None)
    return ContainerShape(None, None)


def _walk_bmff(handle: BinaryIO, size: int) -> ContainerShape:
    offset, brand = 0, b""
    seen: set[bytes] = set()
    for _ in range(_BMFF_MAX_BOXES):
        if offset == size:
            break
        handle.seek(offset)
        header = handle.read(16)
        if len(header) < 8:
            return ContainerShape(_bmff_kind(brand), False, f"the file ends inside a box header at {offset}")
        box_size, box_type = struct.unpack(">I4s", header[:8])
        if box_size == 1:
            if len(header) < 16:
                return ContainerShape(_bmff_kind(brand), False, "the file ends inside a box header")
            box_size = struct.unpack(">Q", header[8:16])[0]
        elif box_size == 0:
            box_size = size - offset  # "extends to the end of the file" (§4.2)
        if box_size < 8:
            return ContainerShape(_bmff_kind(brand), False, f"invalid box size {box_size} at {offset}")
        if box_type == b"ftyp" and not seen:
            brand = header[8:12]
        seen.add(box_type)
        if offset + box_size > size:
            name, past = box_type.decode("latin-1"), offset + box_size - size
            detail = f"box {name!r} at {offset} runs {past} bytes past the end"
            return ContainerShape(_bmff_kind(brand), False, detail)
        offset += box_size
    else:
        return ContainerShape(_bmff_kind(brand), None)
    if b"moov" not in seen:
        return ContainerShape(_bmff_kind(brand), False, "no 'moov' box (the index of the media data)")
    return ContainerShape(_bmff_kind(brand), True)


def _bmff_kind(brand: bytes) -> str:
    return "mov" if brand == b"qt  " else "mp4"


def _matroska(handle: BinaryIO, size: int) -> ContainerShape:
    handle.seek(0)
    data = handle.read(4096)
    header_size = _vint(data, 4)
    if header_size is None:
        return ContainerShape("matroska", False, "the EBML header is cut off")
    length, value = header_size
    body_start = 4 + length
    body_end = body_start + value
    kind = "webm" if _doctype(data[body_start : min(body_end, len(data))]) == b"webm" else "matroska"
    if body_end + 4 > len(data):
        if body_end + 4 > size:
            return ContainerShape(kind, False, "the file ends before the Segment element")
        return ContainerShape(kind, None)  # a huge EBML header: nothing real; let FFmpeg decide
    if data[body_end : body_end + 4] != _EBML_SEGMENT:
        return ContainerShape(kind, None)
    segment = _vint(data, body_end + 4)
    if segment is None:
        return ContainerShape(kind, False, "the Segment header is cut off")
    length, value = segment
    if value == (1 << (7 * length)) - 1:
        return ContainerShape(kind, None)  # "unknown size": a live recording
    declared = body_end + 4 + length + value
    if declared > size:
        return ContainerShape(kind, False, f"the Segment declares {declared} bytes, the file has {size}")
    return ContainerShape(kind, True)


def _vint(data: bytes, offset: int) -> tuple[int, int] | None:
    """An EBML variable-length integer at ``offset``: (its length in bytes, its value)."""
    if offset >= len(data) or data[offset] == 0:
        return None
    first = data[offset]
    length = 8 - first.bit_length() + 1
    if offset + length > len(data):
        return None
    value = first & ((1 << (8 - length)) - 1)
    for byte in data[offset + 1 : offset + length]:
        value = (value << 8) | byte
    return length, value


def _doctype(body: bytes) -> bytes:
    """The DocType string inside an EBML header body, or b"" (not found)."""
    at = body.find(_EBML_DOCTYPE)
    if at < 0:
        return b""
    size = _vint(body, at + 2)
    if size is None:
        return b""
    length, value = size
    return body[at + 2 + length : at + 2 + length + value]


def _ts_sync(path: Path, size: int) -> bool:
    """Sync bytes (0x47) every 188 bytes in the first few packets."""
    with path.open("rb") as handle:
        data = handle.read(_TS_PACKET * 5)
    packets = min(5, size // _TS_PACKET)
    return packets >= 2 and all(data[i * _TS_PACKET] == 0x47 for i in range(packets))
