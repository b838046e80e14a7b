"""Metadata of an uploaded image: EXIF, PNG text chunks, XMP, IPTC and C2PA, searched for generator traces.

Score (the "metadata" method): a generator trace — an AI ``DigitalSourceType`` in XMP or a C2PA
manifest (IPTC NewsCodes ``trainedAlgorithmicMedia``, ``compositeWithTrainedAlgorithmicMedia``,
``algorithmicMedia``), a generation-parameters text (AUTOMATIC1111 ``parameters``, ComfyUI
``prompt``/``workflow``, InvokeAI, NovelAI), or a known generator's name in Software /
CreatorTool / text chunks / the C2PA manifest — gives a high score (``TRACE_SCORE``, or
``NAME_SCORE`` for a name alone). Otherwise the score is None (no opinion): metadata is stripped
by every social network and most editors, so its absence proves nothing. Camera EXIF (make,
model, lens, GPS) is reported but never scored as "real": it is trivially copied into any file
(exiftool, Pillow) and generator front-ends can add it on purpose.

Robustness: every parser runs inside its own guard; a malformed block is recorded as
``"unreadable"`` in ``details["unreadable"]`` and never raises. Sizes are capped (XMP
``MAX_XMP_BYTES``, C2PA scan ``MAX_SCAN_BYTES``, at most ``MAX_TEXT_ITEMS`` texts of
``MAX_VALUE_CHARS`` characters, at most ``MAX_XML_ELEMENTS`` XMP elements) so a hostile 10 MB
XMP packet costs milliseconds, not seconds. Pure function of the bytes; no network, thread-safe.
"""

from __future__ import annotations

import io
import re
import struct
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from PIL import ExifTags, Image, ImageFile, IptcImagePlugin, JpegImagePlugin

from facesocial.forensics.ai_image.report import METADATA, MethodResult

VERSION = "metadata@1.0"
TRACE_SCORE = 0.98
NAME_SCORE = 0.95
MAX_XMP_BYTES = 1 << 20
MAX_SCAN_BYTES = 32 << 20
MAX_TEXT_ITEMS = 20
MAX_VALUE_CHARS = 200
MAX_XML_ELEMENTS = 5000
MAX_IPTC_ITEMS = 20

AI_SOURCE_TYPES = ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia")
# Word-bounded, case-insensitive; the names generators and their front-ends write.
GENERATORS: tuple[tuple[str, str], ...] = (
    ("Stable Diffusion", r"stable[\s_-]?diffusion|\bsdxl\b|stability\.?ai|dreamstudio"),
    ("AUTOMATIC1111", r"automatic1111|\ba1111\b|stable-diffusion-webui"),
    ("ComfyUI", r"comfy\s?ui"),
    ("InvokeAI", r"invoke\s?ai"),
    ("NovelAI", r"novel\s?ai"),
    ("Midjourney", r"mid\s?journey"),
    ("DALL·E", r"dall[\s·\-_.]?e\b|openai"),
    ("Adobe Firefly", r"firefly"),
    ("Imagen", r"\bimagen\b|gemini"),
    ("Leonardo", r"leonardo\.?ai"),
    ("Fooocus", r"\bfooocus\b"),
    ("Flux", r"\bflux(\.1)?\b(?=.*(dev|schnell|pro|black forest))|black forest labs"),
    ("Ideogram", r"\bideogram\b"),
    ("Craiyon", r"\bcraiyon\b"),
    ("Bing Image Creator", r"bing image creator"),
    ("NightCafe", r"nightcafe"),
    ("Runway", r"runwayml|\brunway gen"),
)
_GENERATOR_RES = tuple((name, re.compile(pattern, re.IGNORECASE)) for name, pattern in GENERATORS)
EDITORS = (
    "photoshop",
    "lightroom",
    "gimp",
    "snapseed",
    "affinity",
    "pixelmator",
    "canva",
    "paint.net",
    "facetune",
)
# PNG text keys that only generators write (parameters of the generation).
GENERATOR_TEXT_KEYS = {
    "parameters": "AUTOMATIC1111",
    "prompt": "ComfyUI",
    "workflow": "ComfyUI",
    "invokeai_metadata": "InvokeAI",
    "invokeai_graph": "InvokeAI",
    "sd-metadata": "InvokeAI",
    "dream": "InvokeAI",
    "generation_data": "Stable Diffusion",
    "fooocus_scheme": "Fooocus",
}
_PARAMETERS_RE = re.compile(r"\bSteps:\s*\d+.*\b(Sampler|CFG scale|Seed):", re.IGNORECASE | re.DOTALL)

NS_XMP = "http://ns.adobe.com/xap/1.0/"
NS_IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
NS_PHOTOSHOP = "http://ns.adobe.com/photoshop/1.0/"
NS_TIFF = "http://ns.adobe.com/tiff/1.0/"
NS_EXIF = "http://ns.adobe.com/exif/1.0/"
NS_STEVT = "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#"
XMP_FIELDS = {
    (NS_XMP, "CreatorTool"): "xmp:CreatorTool",
    (NS_XMP, "CreateDate"): "xmp:CreateDate",
    (NS_XMP, "ModifyDate"): "xmp:ModifyDate",
    (NS_IPTC_EXT, "DigitalSourceType"): "Iptc4xmpExt:DigitalSourceType",
    (NS_PHOTOSHOP, "Credit"): "photoshop:Credit",
    (NS_PHOTOSHOP, "Source"): "photoshop:Source",
    (NS_PHOTOSHOP, "DateCreated"): "photoshop:DateCreated",
    (NS_TIFF, "Make"): "tiff:Make",
    (NS_TIFF, "Model"): "tiff:Model",
    (NS_TIFF, "Software"): "tiff:Software",
    (NS_EXIF, "DateTimeOriginal"): "exif:DateTimeOriginal",
    (NS_STEVT, "softwareAgent"): "stEvt:softwareAgent",
}
IPTC_FIELDS = {
    (2, 5): "object_name",
    (2, 65): "originating_program",
    (2, 80): "byline",
    (2, 105): "headline",
    (2, 110): "credit",
    (2, 115): "source",
    (2, 116): "copyright",
    (2, 120): "caption",
}
_TAG = ExifTags.Base
_IFD = ExifTags.IFD
_GPS = ExifTags.GPS
_EXIF_DATE = "%Y:%m:%d %H:%M:%S"


def _text(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """Any metadata value as printable text of at most ``limit`` characters."""
    if isinstance(value, bytes):
        value = value[: limit * 4].decode("utf-8", "replace")
    text = str(value).replace("\x00", "").strip()
    return text[:limit]


def _open(data: bytes) -> Image.Image | None:
    try:
        return Image.open(io.BytesIO(data))
    except Exception:  # any undecodable upload: the metadata report is simply empty
        return None


# ---------------------------------------------------------------- EXIF


def _rational(value: Any) -> float:
    return float(value)


def _gps(gps: dict[int, Any]) -> dict[str, float] | None:
    try:
        lat, lon = gps[_GPS.GPSLatitude], gps[_GPS.GPSLongitude]
        la = sum(_rational(v) / 60**i for i, v in enumerate(lat))
        lo = sum(_rational(v) / 60**i for i, v in enumerate(lon))
        if str(gps.get(_GPS.GPSLatitudeRef, "N")).upper().startswith("S"):
            la = -la
        if str(gps.get(_GPS.GPSLongitudeRef, "E")).upper().startswith("W"):
            lo = -lo
        return {"latitude": round(la, 6), "longitude": round(lo, 6)}
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def _date(value: str | None) -> datetime | None:
    try:
        return datetime.strptime(value[:19], _EXIF_DATE) if value else None
    except ValueError:
        return None


def _exif(image: Image.Image) -> tuple[dict[str, Any], dict[str, str]]:
    """Document 003's exif_data fields (without analysis_result) and texts to search for traces."""
    exif = image.getexif()
    base = dict(exif)
    sub: dict[int, Any] = {}
    gps: dict[int, Any] = {}
    try:
        sub = dict(exif.get_ifd(_IFD.Exif))
    except Exception:  # a broken sub-IFD pointer
        sub = {}
    try:
        gps = dict(exif.get_ifd(_IFD.GPSInfo))
    except Exception:
        gps = {}

    def pick(table: dict[int, Any], tag: int) -> str | None:
        value = table.get(tag)
        return _text(value) or None if value is not None else None

    lens = " ".join(x for x in (pick(sub, _TAG.LensMake), pick(sub, _TAG.LensModel)) if x) or None
    original = pick(sub, _TAG.DateTimeOriginal)
    fields = {
        "exists": bool(base or sub or gps),
        "camera_make": pick(base, _TAG.Make),
        "camera_model": pick(base, _TAG.Model),
        "lens_info": lens,
        "creation_date": original or pick(base, _TAG.DateTime),
        "software": pick(base, _TAG.Software),
        "gps_coordinates": _gps(gps) if gps else None,
        "_datetime": pick(base, _TAG.DateTime),
        "_original": original,
        "_dimensions": (sub.get(_TAG.ExifImageWidth), sub.get(_TAG.ExifImageHeight)),
    }
    texts = {}
    for key, table, tag in (
        ("exif:Software", base, _TAG.Software),
        ("exif:ImageDescription", base, _TAG.ImageDescription),
        ("exif:Artist", base, _TAG.Artist),
        ("exif:Make", base, _TAG.Make),
        ("exif:UserComment", sub, _TAG.UserComment),
    ):
        if table.get(tag) is not None:
            raw = table[tag]
            if key == "exif:UserComment" and isinstance(raw, bytes) and raw[:8] == b"UNICODE\x00":
                # A1111 writes its parameters here as UTF-16 after the 8-byte character-code prefix.
                raw = raw[8 : 8 + 8 * MAX_VALUE_CHARS].decode("utf-16-be", "replace")
            texts[key] = _text(raw, 4 * MAX_VALUE_CHARS)
    return fields, texts


# ---------------------------------------------------------------- XMP


def _xmp_packet(image: Image.Image | None, data: bytes) -> bytes | None:
    for key in ("xmp", "XML:com.adobe.xmp"):
        value = None if image is None else image.info.get(key)
        if value:
            return value.encode("utf-8", "replace") if isinstance(value, str) else bytes(value)
    start = data.find(b"<x:xmpmeta", 0, MAX_SCAN_BYTES)
    if start < 0:
        return None
    end = data.find(b"</x:xmpmeta>", start, start + MAX_XMP_BYTES + 16)
    return data[start : end + 12] if end >= 0 else data[start : start + MAX_XMP_BYTES + 1]


def _xmp(packet: bytes) -> tuple[dict[str, str], bool]:
    """Selected XMP fields; ``readable`` False when the packet is oversized or not well-formed XML.

    An unreadable packet is still searched as text for an AI DigitalSourceType (a regex over
    at most ``MAX_XMP_BYTES``).
    """
    from defusedxml import ElementTree as SafeET  # type: ignore[import-untyped]  # refuses entity expansion and external entities

    fields: dict[str, str] = {}
    head = packet[:MAX_XMP_BYTES]
    readable = len(packet) <= MAX_XMP_BYTES
    if readable:
        try:
            root = SafeET.fromstring(head.decode("utf-8", "replace"))
        except Exception:  # defusedxml's and ElementTree's parse errors alike
            readable = False
        else:
            for count, element in enumerate(root.iter()):
                if count >= MAX_XML_ELEMENTS:
                    break
                items = [(str(element.tag), element.text), *element.attrib.items()]
                for tag, value in items:
                    ns, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
                    name = XMP_FIELDS.get((ns, local))
                    text = _text(value or "")
                    if name and text:
                        if name in fields and text not in fields[name]:
                            fields[name] = _text(f"{fields[name]}; {text}")
                        else:
                            fields.setdefault(name, text)
    if "Iptc4xmpExt:DigitalSourceType" not in fields:
        match = re.search(rb"DigitalSourceType[^>]{0,8}?[=>]\s*[\"']?([^\"'<\s]{1,200})", head)
        if match:
            fields["Iptc4xmpExt:DigitalSourceType"] = _text(match.group(1))
    return fields, readable


# ---------------------------------------------------------------- C2PA


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        yield kind, data[pos + 8 : pos + 8 + min(length, MAX_SCAN_BYTES)]
        pos += 12 + length
        if kind == b"IEND":
            return


def _jpeg_app11(data: bytes) -> bytes:
    """The concatenated APP11 (JUMBF) payloads of a JPEG, bounded by ``MAX_SCAN_BYTES``."""
    out = bytearray()
    pos = 2
    while pos + 4 <= len(data) and len(out) < MAX_SCAN_BYTES:
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker in (0xD9, 0xDA):  # end of image / start of scan: no more metadata segments
            break
        if marker == 0xFF or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 1 if marker == 0xFF else 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xEB:
            out += data[pos + 4 : pos + 2 + length]
        pos += 2 + length
    return bytes(out)


def _c2pa(data: bytes, fmt: str | None) -> dict[str, Any]:
    if data[:2] == b"\xff\xd8":
        manifest = _jpeg_app11(data)
        present = b"jumb" in manifest and b"c2pa" in manifest
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        manifest = b"".join(body for kind, body in _png_chunks(data) if kind == b"caBX")
        present = bool(manifest)
    else:  # WebP "C2PA" chunk, HEIF/AVIF uuid box, ...: the JUMBF superbox itself is what counts
        window = data[:MAX_SCAN_BYTES]
        at = window.find(b"jumb")
        present = at >= 0 and window.find(b"c2pa", at) >= 0
        manifest = window[at:] if present else b""
    declares_ai = present and any(t.encode() in manifest for t in AI_SOURCE_TYPES)
    return {
        "present": present,
        "declares_ai": declares_ai,
        "bytes": len(manifest) if present else 0,
        "_text": manifest[:MAX_SCAN_BYTES].decode("latin-1") if present else "",
    }


# ---------------------------------------------------------------- the method


def _generator_names(text: str) -> list[str]:
    return [name for name, pattern in _GENERATOR_RES if pattern.search(text)]


def _iptc(image: Image.Image) -> dict[str, str]:
    if not isinstance(image, ImageFile.ImageFile):
        return {}
    info = IptcImagePlugin.getiptcinfo(image) or {}
    out: dict[str, str] = {}
    for key, value in list(info.items())[: 4 * MAX_IPTC_ITEMS]:
        name = IPTC_FIELDS.get(key)
        if name and len(out) < MAX_IPTC_ITEMS:
            first = value[0] if isinstance(value, list) and value else value
            out[name] = _text(first)
    return out


def _png_text(image: Image.Image) -> dict[str, str]:
    texts = getattr(image, "text", None) if image.format == "PNG" else None
    if not texts:
        return {}
    return {
        _text(k, 64): _text(v) for k, v in list(texts.items())[:MAX_TEXT_ITEMS] if k != "XML:com.adobe.xmp"
    }


def analyze(data: bytes) -> MethodResult:
    """The metadata report of the encoded image ``data`` (any format Pillow opens; module doc).

    Score ≥ 0.95 on a generator trace, else None. ``details``: ``exif_data`` (document 003 shape:
    exists, camera_make, camera_model, lens_info, creation_date, software, gps_coordinates or
    None, analysis_result {is_suspicious, confidence, anomalies}), ``png_text``, ``xmp``,
    ``iptc``, ``c2pa`` {present, declares_ai, bytes}, ``generator_hints``, ``unreadable`` (the
    blocks that could not be parsed). Never raises on malformed metadata.
    """
    start = time.perf_counter()
    unreadable: list[str] = []
    hints: list[str] = []
    anomalies: list[str] = []
    strong = False
    image = _open(data)
    if image is None:
        unreadable.append("image")
    exif_fields: dict[str, Any] = {"exists": False}
    search: dict[str, str] = {}
    png_text: dict[str, str] = {}
    xmp: dict[str, str] = {}
    iptc: dict[str, str] = {}
    if image is not None:
        try:
            exif_fields, search = _exif(image)
        except Exception:
            unreadable.append("exif")
        try:
            full_texts = getattr(image, "text", {}) if image.format == "PNG" else {}
            png_text = _png_text(image)
            for key, value in list(full_texts.items())[:MAX_TEXT_ITEMS]:
                generator = GENERATOR_TEXT_KEYS.get(key.strip().lower())
                head = _text(value, 4 * MAX_VALUE_CHARS)
                if generator:
                    strong = True
                    hints.append(f"png text '{key}': {generator} generation parameters")
                search[f"png:{key}"] = head
        except Exception:  # zTXt/iTXt decompression limits, broken chunks
            unreadable.append("png_text")
        try:
            iptc = _iptc(image)
        except Exception:
            unreadable.append("iptc")
    try:
        packet = _xmp_packet(image, data)
        if packet is not None:
            xmp, readable = _xmp(packet)
            if not readable:
                unreadable.append("xmp")
    except Exception:
        unreadable.append("xmp")
    c2pa: dict[str, Any] = {"present": False, "declares_ai": False, "bytes": 0, "_text": ""}
    try:
        c2pa = _c2pa(data, None if image is None else image.format)
    except Exception:
        unreadable.append("c2pa")

    source_type = xmp.get("Iptc4xmpExt:DigitalSourceType", "")
    if any(source_type.endswith(t) for t in AI_SOURCE_TYPES):
        strong = True
        hints.append(f"XMP DigitalSourceType {source_type.rsplit('/', 1)[-1]}")
    if c2pa["declares_ai"]:
        strong = True
        hints.append("C2PA manifest declares an AI digital source type")
    for key, text in search.items():
        if _PARAMETERS_RE.search(text):
            strong = True
            hints.append(f"{key}: generation parameters (Steps/Sampler/CFG/Seed)")
    named: set[str] = set()
    for key, text in [
        *search.items(),
        *((f"xmp:{k}", v) for k, v in xmp.items()),
        *((f"iptc:{k}", v) for k, v in iptc.items()),
        ("c2pa", c2pa.pop("_text", "")),
    ]:
        if key in ("exif:Artist", "iptc:byline", "iptc:copyright"):
            continue  # people's names (a photographer called Leonardo) are not software
        for name in _generator_names(text):
            if name not in named:
                named.add(name)
                hints.append(f"{key} names {name}")

    software = " ".join(
        s
        for s in (exif_fields.get("software"), xmp.get("xmp:CreatorTool"), xmp.get("stEvt:softwareAgent"))
        if s
    )
    for editor in EDITORS:
        if editor in software.lower():
            anomalies.append(f"edited with {editor}")
            break
    if image is not None:
        ew, eh = exif_fields.get("_dimensions", (None, None))
        try:
            if ew and eh and {int(ew), int(eh)} != {image.width, image.height}:
                anomalies.append(
                    f"EXIF dimensions {int(ew)}x{int(eh)} differ from the image {image.width}x{image.height}"
                )
        except (TypeError, ValueError):
            pass
    original, modified = _date(exif_fields.get("_original")), _date(exif_fields.get("_datetime"))
    if original and modified and original > modified:
        anomalies.append("DateTimeOriginal is later than DateTime")
    if exif_fields.get("camera_make") and not exif_fields.get("camera_model"):
        anomalies.append("camera make without model")
    if c2pa["present"] and not c2pa["declares_ai"]:
        anomalies.append("C2PA manifest present (provenance recorded; no AI source declared)")

    score = TRACE_SCORE if strong else NAME_SCORE if named else None
    suspicious = score is not None
    exif_data = {k: v for k, v in exif_fields.items() if not k.startswith("_")}
    for key in ("camera_make", "camera_model", "lens_info", "creation_date", "software", "gps_coordinates"):
        exif_data.setdefault(key, None)
    exif_data["analysis_result"] = {
        "is_suspicious": suspicious,
        "confidence": 0.0 if score is None else round(abs(score - 0.5) * 2.0, 4),
        "anomalies": anomalies + [f"generator trace: {h}" for h in hints],
    }
    details = {
        "exif_data": exif_data,
        "png_text": png_text,
        "xmp": xmp,
        "iptc": iptc,
        "c2pa": c2pa,
        "generator_hints": hints,
        "unreadable": unreadable,
    }
    elapsed = (time.perf_counter() - start) * 1000.0
    return MethodResult(METADATA, score, elapsed, VERSION, details)


# ---------------------------------------------------------------- file_info

# JPEG Annex K luminance table (natural order; only its sum is used, so the order is irrelevant).
_STD_LUMA = (
    "16 11 10 16 24 40 51 61 12 12 14 19 26 58 60 55 14 13 16 24 40 57 69 56 14 17 22 29 51 87 80 62 "
    "18 22 37 56 68 109 103 77 24 35 55 64 81 104 113 92 49 64 78 87 103 121 120 101 "
    "72 92 95 98 112 100 103 99"
)
_STD_LUMA_SUM = sum(int(v) for v in _STD_LUMA.split())
_COLOR_SPACES = {
    "1": "bilevel",
    "L": "grayscale",
    "LA": "grayscale+alpha",
    "P": "palette",
    "RGB": "RGB",
    "RGBA": "RGBA",
    "CMYK": "CMYK",
    "YCbCr": "YCbCr",
    "I;16": "grayscale",
    "I": "grayscale",
    "F": "grayscale",
}
_BIT_DEPTHS = {"1": 1, "I;16": 16, "I;16B": 16, "I": 32, "F": 32}


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_PALETTE = 3  # IHDR colour type: its bit depth is the index's, the palette's samples are 8-bit
_TIFF_BITS_PER_SAMPLE = 258


def _declared_bit_depth(image: Image.Image, data: bytes) -> int | None:
    """Bits per channel as the file's header declares them, or None to fall back on the mode.

    Pillow's mode cannot say it: a 16-bit RGB/RGBA PNG or TIFF opens as 8-bit "RGB"/"RGBA".
    PNG: the IHDR chunk, which the PNG specification (ISO/IEC 15948, 11.2.2) puts first: byte 24
    of the file is the bit depth (1, 2, 4, 8 or 16), byte 25 the colour type. TIFF: the largest
    BitsPerSample (tag 258, TIFF 6.0 section 3).
    """
    if data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 26:
        return 8 if data[25] == _PNG_PALETTE else int(data[24])
    tags = getattr(image, "tag_v2", None)
    if tags is not None:
        bits = tags.get(_TIFF_BITS_PER_SAMPLE)
        values = bits if isinstance(bits, tuple) else (bits,)
        depths = [int(v) for v in values if isinstance(v, int) and v > 0]
        return max(depths) if depths else None
    return None


def jpeg_quality(luma_table: list[int]) -> int:
    """IJG quality 1..100 whose scaled Annex K table has the same sum as ``luma_table``.

    The IJG scaling (libjpeg ``jpeg_quality_scaling``): S = 5000/q for q < 50, else 200 − 2q.
    """
    s = 100.0 * sum(luma_table) / _STD_LUMA_SUM
    q = 5000.0 / s if s > 100.0 else (200.0 - s) / 2.0
    return int(min(100, max(1, round(q))))


def file_info(data: bytes, width: int, height: int) -> dict[str, Any]:
    """Document 003's ``file_info``: dimensions, color_space, bit_depth (per channel), compression.

    ``compression`` e.g. ``"jpeg q≈90"`` (estimated from the luminance quantisation table,
    ``" progressive"`` appended when so), ``"png (deflate)"``, ``"webp lossless"``/``"webp lossy"``,
    or the format's name; ``"unknown"`` fields when the bytes cannot be opened. Never raises.
    """
    info: dict[str, Any] = {
        "dimensions": {"width": int(width), "height": int(height)},
        "color_space": "unknown",
        "bit_depth": None,
        "compression": "unknown",
    }
    image = _open(data)
    if image is None:
        return info
    try:
        mode = image.mode
        space = _COLOR_SPACES.get(mode, mode)
        if image.info.get("icc_profile"):
            space += " (ICC profile)"
        info["color_space"] = space
        info["bit_depth"] = _declared_bit_depth(image, data) or _BIT_DEPTHS.get(
            mode, 16 if image.info.get("bits") == 16 else 8
        )
        fmt = (image.format or "").lower()
        if isinstance(image, JpegImagePlugin.JpegImageFile) and image.quantization:
            compression = f"jpeg q≈{jpeg_quality(list(image.quantization[0]))}"
            if image.info.get("progressive") or image.info.get("progression"):
                compression += " progressive"
        elif fmt == "png":
            compression = "png (deflate)"
        elif fmt == "webp":
            compression = "webp lossless" if data[12:16] == b"VP8L" else "webp lossy"
        elif fmt == "tiff":
            compression = f"tiff {image.info.get('compression', 'raw')}"
        else:
            compression = fmt or "unknown"
        info["compression"] = compression
    except Exception:  # a half-parsed header: keep what was read
        pass
    return info
