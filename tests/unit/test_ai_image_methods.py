"""The hand-made AI-image methods on images made in the test: metadata traces, ELA, noise, texture,
spectrum, the anomaly regions and the reference → score rule."""

from __future__ import annotations

import io
import json
import struct
import time
import zlib

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, PngImagePlugin

from facesocial.forensics.ai_image import anomalies, ela, metadata, noise, reference, spectrum, texture
from facesocial.forensics.ai_image.report import METHOD_THRESHOLD
from facesocial.forensics.calibration import ReferenceTable, build_reference

XMP_AI = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
    b'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="MyTool 1.0">'
    b"<Iptc4xmpExt:DigitalSourceType>http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
    b"</Iptc4xmpExt:DigitalSourceType></rdf:Description></rdf:RDF></x:xmpmeta>"
)


def photo_like(height: int = 240, width: int = 320, seed: int = 0) -> npt.NDArray[np.uint8]:
    """A smooth gradient scene with edges and Gaussian sensor-like noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([80 + 0.3 * xx, 90 + 0.3 * yy, 120 + 0.1 * (xx + yy)], axis=-1)
    base[height // 3 : 2 * height // 3, width // 4 : width // 2] += 60.0
    base += rng.normal(0.0, 4.0, base.shape)
    return np.clip(base, 0, 255).astype(np.uint8)


def encode(rgb: npt.NDArray[np.uint8], fmt: str = "JPEG", **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def app11_c2pa(payload: bytes) -> bytes:
    """A JPEG APP11 segment holding a (minimal) JUMBF superbox labelled c2pa."""
    label = b"c2pa\x00"
    jumd = b"jumd" + bytes(16) + b"\x03" + label
    jumd_box = (8 + len(jumd) - 4).to_bytes(4, "big") + jumd
    superbox = (8 + len(jumd_box) + len(payload)).to_bytes(4, "big") + b"jumb" + jumd_box + payload
    body = b"JP" + b"\x00\x01" + (1).to_bytes(4, "big") + superbox
    return b"\xff\xeb" + (len(body) + 2).to_bytes(2, "big") + body


def with_segment(jpeg: bytes, segment: bytes) -> bytes:
    return jpeg[:2] + segment + jpeg[2:]


# ---------------------------------------------------------------- metadata


def test_png_parameters_chunk_scores_high() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a portrait\nSteps: 30, Sampler: DPM++ 2M, CFG scale: 7, Seed: 42")
    info.add_text("Comment", "x" * 5000)
    result = metadata.analyze(encode(photo_like(), "PNG", pnginfo=info))
    assert result.score is not None and result.score >= 0.95
    assert result.is_ai_generated is True
    assert "parameters" in result.details["png_text"]
    assert all(len(v) <= metadata.MAX_VALUE_CHARS for v in result.details["png_text"].values())
    assert any("AUTOMATIC1111" in h for h in result.details["generator_hints"])
    assert result.details["exif_data"]["analysis_result"]["is_suspicious"] is True
    json.dumps(result.as_dict())


def test_jpeg_xmp_digital_source_type_scores_high() -> None:
    result = metadata.analyze(encode(photo_like(), xmp=XMP_AI))
    assert result.score is not None and result.score >= 0.95
    assert result.details["xmp"]["Iptc4xmpExt:DigitalSourceType"].endswith("trainedAlgorithmicMedia")
    assert result.details["xmp"]["xmp:CreatorTool"] == "MyTool 1.0"


def test_jpeg_app11_c2pa_manifest_declaring_ai() -> None:
    declared = b"c2pa.actions ... digitalSourceType http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
    result = metadata.analyze(with_segment(encode(photo_like()), app11_c2pa(declared)))
    c2pa = result.details["c2pa"]
    assert c2pa["present"] is True and c2pa["declares_ai"] is True and c2pa["bytes"] > 0
    assert result.score is not None and result.score >= 0.95


def test_c2pa_without_ai_source_is_reported_not_scored() -> None:
    result = metadata.analyze(with_segment(encode(photo_like()), app11_c2pa(b"c2pa.actions c2pa.captured")))
    assert result.details["c2pa"]["present"] is True
    assert result.details["c2pa"]["declares_ai"] is False
    assert result.score is None


def test_a1111_jpeg_user_comment_parameters() -> None:
    exif = Image.Exif()
    text = "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5"
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + text.encode("utf-16-be")
    result = metadata.analyze(encode(photo_like(), exif=exif))
    assert result.score is not None and result.score >= 0.95
    assert any("UserComment" in h for h in result.details["generator_hints"])


def test_png_cabx_and_webp_c2pa_chunks() -> None:
    png = encode(photo_like(), "PNG")
    body = b"jumb....c2pa....trainedAlgorithmicMedia"
    chunk = struct.pack(">I", len(body)) + b"caBX" + body + struct.pack(">I", zlib.crc32(b"caBX" + body))
    result = metadata.analyze(png[:33] + chunk + png[33:])  # after IHDR
    assert result.details["c2pa"] == {"present": True, "declares_ai": True, "bytes": len(body)}
    assert result.details["unreadable"] == []

    webp = encode(photo_like(), "WEBP")
    payload = b"\x00\x00\x00\x40jumb\x00\x00\x00\x20jumdc2pa\x00compositeWithTrainedAlgorithmicMedia"
    riff = b"C2PA" + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) % 2)
    webp = webp[:4] + struct.pack("<I", len(webp) - 8 + len(riff)) + webp[8:] + riff
    result = metadata.analyze(webp)
    assert result.details["c2pa"]["present"] is True and result.details["c2pa"]["declares_ai"] is True
    assert result.score is not None and result.score >= 0.95
    assert metadata.file_info(webp, 320, 240)["compression"] == "webp lossy"


def test_camera_exif_is_reported_but_neutral() -> None:
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS 5D Mark IV"
    exif[0x0131] = "Adobe Photoshop 25.0"
    exif[0x0132] = "2024:05:01 10:00:00"
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = "2024:05:02 09:00:00"  # original later than modified
    sub[0xA434] = "EF24-70mm f/2.8L II USM"
    sub[0xA002] = 4000
    sub[0xA003] = 3000
    result = metadata.analyze(encode(photo_like(), exif=exif))
    data = result.details["exif_data"]
    assert result.score is None and result.is_ai_generated is None
    assert data["exists"] is True
    assert (data["camera_make"], data["camera_model"]) == ("Canon", "Canon EOS 5D Mark IV")
    assert data["lens_info"] == "EF24-70mm f/2.8L II USM"
    assert data["creation_date"] == "2024:05:02 09:00:00"
    assert data["gps_coordinates"] is None
    found = " | ".join(data["analysis_result"]["anomalies"])
    assert "photoshop" in found and "DateTimeOriginal" in found and "4000x3000" in found


def test_generator_software_name_scores_high() -> None:
    exif = Image.Exif()
    exif[0x0131] = "ComfyUI"
    result = metadata.analyze(encode(photo_like(), exif=exif))
    assert result.score is not None and result.score >= 0.95


def test_plain_image_has_no_opinion() -> None:
    result = metadata.analyze(encode(photo_like()))
    assert result.score is None and result.details["generator_hints"] == []
    assert result.details["exif_data"]["exists"] is False


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image at all",
        encode(photo_like())[:300],
        # a 10 MB unterminated XMP packet after the image
        encode(photo_like()) + b"<x:xmpmeta>" + b"<a>" * 3_500_000,
        # malformed XMP inside the JPEG
        encode(photo_like(), xmp=b"<x:xmpmeta><rdf:RDF><unclosed></x:xmpmeta>"),
        # entity expansion ("billion laughs") must be refused, not expanded
        encode(photo_like(), xmp=b'<!DOCTYPE a [<!ENTITY b "bbbbbbbbbb">]><x:xmpmeta>&b;</x:xmpmeta>'),
        # a broken APP11 length running past the end
        with_segment(encode(photo_like()), b"\xff\xeb\xff\xffJP"),
    ],
)
def test_malformed_metadata_never_raises(data: bytes) -> None:
    start = time.perf_counter()
    result = metadata.analyze(data)
    assert result.name == "metadata"
    assert time.perf_counter() - start < 2.0
    json.dumps(result.as_dict())


def test_huge_xmp_is_unreadable_but_cheap() -> None:
    data = encode(photo_like()) + b"<x:xmpmeta>" + b"<a>" * 3_500_000
    result = metadata.analyze(data)
    assert "xmp" in result.details["unreadable"]


def test_file_info_jpeg_quality_and_png() -> None:
    rgb = photo_like()
    for quality in (60, 90):
        info = metadata.file_info(encode(rgb, quality=quality), 320, 240)
        estimated = int(info["compression"].split("≈")[1].split()[0])
        assert abs(estimated - quality) <= 2
        assert info["dimensions"] == {"width": 320, "height": 240}
        assert info["bit_depth"] == 8 and info["color_space"] == "RGB"
    assert metadata.file_info(encode(rgb, "PNG"), 320, 240)["compression"] == "png (deflate)"
    assert metadata.file_info(b"junk", 1, 1)["compression"] == "unknown"


# ---------------------------------------------------------------- pixel methods


def calibrated_table(rgbs: list[npt.NDArray[np.uint8]]) -> ReferenceTable:
    """A reference built from the given images (for score plumbing only, not accuracy)."""
    rows = [
        {**ela.measure(x)[0], **noise.measure(x)[0], **texture.measure(x)[0], **spectrum.measure(x)}
        for x in rgbs
    ]
    directions = {**ela.STATISTICS, **noise.STATISTICS, **texture.STATISTICS, **spectrum.STATISTICS}
    return ReferenceTable.from_dict(
        {"signals": {k: build_reference(k, [r[k] for r in rows], d) for k, d in directions.items()}}
    )


@pytest.fixture(scope="module")
def table() -> ReferenceTable:
    return calibrated_table([photo_like(200 + 8 * i, 260, seed=i) for i in range(12)])


def test_ela_outputs(table: ReferenceTable) -> None:
    rgb = photo_like(300, 700)
    result, block_map, png = ela.analyze(rgb, table)
    decoded = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.ndim == 3 and decoded.shape[2] == 3
    assert abs(decoded.shape[1] / decoded.shape[0] - 700 / 300) < 0.02
    assert block_map.shape == (-(-300 // ela.BLOCK), -(-700 // ela.BLOCK))
    assert block_map.min() >= 0.0 and block_map.max() <= 1.0
    assert result.score is not None and 0.0 <= result.score <= 1.0
    assert set(result.details["statistics"]) == set(ela.STATISTICS)
    json.dumps(result.as_dict())


def test_ela_png_is_capped() -> None:
    _, _, png = ela.analyze(photo_like(600, 1500), ReferenceTable({}))
    decoded = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert max(decoded.shape[:2]) == ela.PNG_MAX_SIDE


def test_ela_sees_a_pasted_region() -> None:
    """A region pasted from a twice-heavier-compressed copy differs in error level."""
    rgb = photo_like(256, 256)
    once = np.asarray(Image.open(io.BytesIO(encode(rgb, quality=95))).convert("RGB"))
    rough = np.asarray(Image.open(io.BytesIO(encode(rgb, quality=40))).convert("RGB"))
    forged = once.copy()
    forged[64:128, 64:128] = rough[64:128, 64:128]
    _, block_map, _ = ela.analyze(forged, ReferenceTable({}))
    inside = block_map[4:8, 4:8].mean()
    assert inside != pytest.approx(block_map[10:, 10:].mean(), abs=0.02)


def test_noise_map_and_prnu_fields(table: ReferenceTable) -> None:
    rgb = photo_like(256, 320)
    rgb[:128, :160] = cv2.GaussianBlur(rgb[:128, :160], (5, 5), 2.0)  # noise removed in one quadrant
    result, block_map = noise.analyze(rgb, table)
    assert block_map.shape == (8, 10)
    assert block_map.min() >= 0.0 and block_map.max() <= 1.0
    assert block_map[:4, :5].mean() > block_map[4:, 5:].mean()
    assert {"pattern_score", "is_suspicious", "confidence"} <= set(result.details)
    assert result.details["pattern_score"] == pytest.approx(result.score, abs=1e-4)


def test_texture_smooth_vs_noisy() -> None:
    noisy = photo_like(256, 256)
    smooth = cv2.GaussianBlur(noisy, (7, 7), 3.0)
    s_noisy, map_noisy = texture.measure(noisy)
    s_smooth, _ = texture.measure(smooth)
    assert s_smooth["texture_smoothness"] > s_noisy["texture_smoothness"]
    assert s_smooth["texture_flat_fraction"] >= s_noisy["texture_flat_fraction"]
    assert map_noisy.shape == (16, 16) and map_noisy.min() >= 0.0 and map_noisy.max() <= 1.0
    result, _ = texture.analyze(smooth, ReferenceTable({}))
    assert result.score is None and result.details["smoothness_score"] is not None


def test_spectrum_peak_finds_upsampling() -> None:
    """A fixed 4×4 pattern repeated over the image (the checkerboard of a stride-4 transposed
    convolution) puts peaks on the k/4 grid."""
    rng = np.random.default_rng(3)
    natural = photo_like(512, 512)
    kernel = rng.normal(0.0, 3.0, (4, 4))
    pattern = np.tile(kernel, (128, 128))[:, :, None]
    upsampled = np.clip(natural + pattern, 0, 255).astype(np.uint8)
    assert spectrum.measure(upsampled)["spectrum_peak"] > spectrum.measure(natural)["spectrum_peak"] + 0.5
    tiny = spectrum.analyze(photo_like(40, 40), ReferenceTable({}))
    assert tiny.score is None and tiny.details["patch_side_px"] is None


def test_bad_arrays_raise_value_error() -> None:
    grey = np.zeros((32, 32), np.uint8)
    for call in (ela.analyze, noise.analyze, texture.analyze, spectrum.analyze):
        with pytest.raises(ValueError):
            call(grey, ReferenceTable({}))  # type: ignore[operator]


# ---------------------------------------------------------------- reference and anomalies


def test_score_statistics_bonferroni() -> None:
    values = np.linspace(0.0, 1.0, 1001)
    table = ReferenceTable.from_dict(
        {"signals": {"a": build_reference("a", values, "upper"), "b": build_reference("b", values, "upper")}}
    )
    alone, _ = reference.score_statistics({"a": 0.99}, table)
    both, per = reference.score_statistics({"a": 0.99, "b": 0.5}, table)
    assert alone is not None and both is not None and both < alone
    assert per["a"]["percentile"] == pytest.approx(0.99, abs=0.002)
    none, per = reference.score_statistics({"c": float("nan")}, table)
    assert none is None and per["c"]["raw"] is None


def test_anomalies_boxes_inside_and_heatmap() -> None:
    height, width = 300, 500
    maps = {name: np.full((10, 16), 0.2, np.float32) for name in ("ela", "noise", "texture")}
    maps["noise"][2:5, 3:7] = 0.9  # rows 60..150, cols ~94..219 in image pixels
    found, png = anomalies.find(maps, height, width, faces=[((400, 200, 150, 150), 0.9)])
    assert found[0].type == "noise_inconsistency"
    x, y, w, h = found[0].box
    assert 60 <= x <= 110 and 40 <= y <= 70 and w > 0 and x + w <= 240 and y + h <= 170
    for a in found:
        bx, by, bw, bh = a.box
        assert bx >= 0 and by >= 0 and bx + bw <= width and by + bh <= height and bw > 0 and bh > 0
        assert 0.0 <= a.confidence <= 1.0
    assert any(a.type == "synthetic_face" for a in found)
    heat = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert heat.shape == (300, 500, 4)
    assert heat[200:290, 410:490, 3].mean() > 100  # the face paint
    flat, _ = anomalies.find({"ela": np.full((4, 4), 0.3, np.float32)}, 64, 64)
    assert flat == []
    _, png = anomalies.find(maps, 2000, 3000)
    assert (
        max(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED).shape[:2]) == anomalies.MAX_SIDE
    )
    assert METHOD_THRESHOLD == 0.5


def test_packaged_reference_covers_every_statistic() -> None:
    table = reference.packaged_reference()
    for statistics in (ela.STATISTICS, noise.STATISTICS, texture.STATISTICS, spectrum.STATISTICS):
        for name, direction in statistics.items():
            entry = table.get(name)
            assert entry is not None, f"{name} missing: run scripts/calibrate_ai_image_methods.py"
            assert entry.direction == direction and entry.count >= 100
    assert "real" in table.manifest["split"].lower()
