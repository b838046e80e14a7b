"""Decoding untrusted bytes: accepted formats, orientation, extreme shapes, each bad input its error.

Every file is made here by a real encoder (Pillow, pillow-heif).
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image, ImageFile, ImageOps

from facesocial import errors
from facesocial.settings import ImageLimits
from facesocial.vision.image import ImageHeader, decode_image, probe_image
from facesocial.vision.image_formats import register_plugins
from tests.conftest import encode

register_plugins()  # Pillow's HEIF encoder, used below to make test files

WIDTH, HEIGHT = 96, 64
RED_BLOCK = 16


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header announcing ``width`` x ``height``, with almost no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 10))
        + chunk(b"IEND", b"")
    )


def small_rgb() -> np.ndarray:
    return (np.arange(64 * 48 * 3) % 251).astype(np.uint8).reshape(48, 64, 3)


def asymmetric() -> Image.Image:
    """96x64 grey with a red 16x16 block in the top-left corner: any rotation or flip moves it."""
    rgb = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    rgb[:RED_BLOCK, :RED_BLOCK] = (255, 0, 0)
    return Image.fromarray(rgb)


def save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def red_centre(rgb: np.ndarray) -> tuple[float, float]:
    """(row, column) of the centre of the red block."""
    red = (rgb[..., 0] > 190) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)
    rows, cols = np.nonzero(red)
    return float(rows.mean()), float(cols.mean())


def frames(*colours: tuple[int, int, int]) -> list[Image.Image]:
    return [Image.new("RGB", (WIDTH, HEIGHT), colour) for colour in colours]


@pytest.fixture
def forbid_decoding(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call it once the test file is made: from then on, any pixel decoding fails the test
    (a refusal must come from the header). Plugins with a load() of their own are covered too."""

    def refuse(self: Image.Image) -> None:
        raise AssertionError(f"{self.format} pixels were decoded")

    def forbid() -> None:
        Image.init()
        plugin_classes = {factory for factory, _ in Image.OPEN.values() if isinstance(factory, type)}
        for cls in plugin_classes | {ImageFile.ImageFile, Image.Image}:
            if "load" in vars(cls):
                monkeypatch.setattr(cls, "load", refuse)

    return forbid


# --- accepted formats -----------------------------------------------------------------------


ACCEPTED: list[tuple[str, Callable[[], bytes], str]] = [
    ("jpeg", lambda: save(asymmetric(), "JPEG", quality=95), "JPEG"),
    ("png", lambda: save(asymmetric(), "PNG"), "PNG"),
    ("webp", lambda: save(asymmetric(), "WEBP", lossless=True), "WEBP"),
    ("bmp", lambda: save(asymmetric(), "BMP"), "BMP"),
    ("heic", lambda: save(asymmetric(), "HEIF", quality=90), "HEIF"),
    ("avif", lambda: save(asymmetric(), "AVIF", quality=90), "AVIF"),
    ("gif", lambda: save(asymmetric(), "GIF"), "GIF"),
    ("tiff", lambda: save(asymmetric(), "TIFF"), "TIFF"),
    (
        "mpo",
        lambda: save(asymmetric(), "MPO", save_all=True, append_images=frames((0, 0, 255))),
        "MPO",
    ),
]


@pytest.mark.parametrize(("make", "fmt"), [(m, f) for _, m, f in ACCEPTED], ids=[i for i, _, _ in ACCEPTED])
def test_accepted_formats_decode_upright_at_full_size(make: Callable[[], bytes], fmt: str) -> None:
    data = make()
    image = decode_image(data)
    assert image.format == fmt
    assert image.rgb.shape == (HEIGHT, WIDTH, 3)
    assert image.rgb.dtype == np.uint8 and image.rgb.flags.c_contiguous
    assert red_centre(image.rgb) == pytest.approx((7.5, 7.5), abs=1.0)
    assert image.scale == 1.0
    assert probe_image(data) == ImageHeader(fmt, WIDTH, HEIGHT)


MULTI_FRAME: list[tuple[str, Callable[[], bytes]]] = [
    ("mpo", lambda: save(frames((0, 200, 0))[0], "MPO", save_all=True, append_images=frames((0, 0, 255)))),
    ("gif", lambda: save(frames((0, 200, 0))[0], "GIF", save_all=True, append_images=frames((0, 0, 255)))),
    ("tiff", lambda: save(frames((0, 200, 0))[0], "TIFF", save_all=True, append_images=frames((0, 0, 255)))),
    ("webp", lambda: save(frames((0, 200, 0))[0], "WEBP", save_all=True, append_images=frames((0, 0, 255)))),
    ("apng", lambda: save(frames((0, 200, 0))[0], "PNG", save_all=True, append_images=frames((0, 0, 255)))),
    ("avif", lambda: save(frames((0, 200, 0))[0], "AVIF", save_all=True, append_images=frames((0, 0, 255)))),
    ("heic", lambda: save(frames((0, 200, 0))[0], "HEIF", save_all=True, append_images=frames((0, 0, 255)))),
]


@pytest.mark.parametrize("make", [m for _, m in MULTI_FRAME], ids=[i for i, _ in MULTI_FRAME])
def test_multi_frame_files_give_their_first_frame(make: Callable[[], bytes]) -> None:
    data = make()
    with Image.open(io.BytesIO(data)) as check:
        assert getattr(check, "n_frames", 1) == 2  # the encoder really wrote two frames
    mean = decode_image(data).rgb.reshape(-1, 3).mean(axis=0)
    assert mean == pytest.approx((0, 200, 0), abs=6)


def test_heic_branded_mif1_is_still_heic() -> None:
    """Some phones brand HEIC files 'mif1', which Pillow's AVIF plugin also claims."""
    data = bytearray(save(asymmetric(), "HEIF", quality=90))
    assert data[4:12] == b"ftypheic"
    data[8:12] = b"mif1"
    image = decode_image(bytes(data))
    assert image.format == "HEIF" and image.rgb.shape == (HEIGHT, WIDTH, 3)


# --- orientation ----------------------------------------------------------------------------


def with_orientation(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillows_transpose(orientation: int) -> None:
    data = save(asymmetric(), "PNG", exif=with_orientation(orientation))
    with Image.open(io.BytesIO(data)) as reference:
        expected = np.asarray(ImageOps.exif_transpose(reference).convert("RGB"))
    assert np.array_equal(decode_image(data).rgb, expected)


# Orientation 6 = "rotate 90° clockwise to display": the red top-left block ends top-right.
# 3 = 180°: bottom-right; 8 = 90° anticlockwise: bottom-left.
UPRIGHT_RED = {6: ((WIDTH, HEIGHT), (7.5, HEIGHT - 8.5)), 3: ((HEIGHT, WIDTH), (HEIGHT - 8.5, WIDTH - 8.5))}
UPRIGHT_RED[8] = ((WIDTH, HEIGHT), (WIDTH - 8.5, 7.5))

ORIENTED: list[tuple[str, str, dict[str, object]]] = [
    ("jpeg", "JPEG", {"quality": 95}),
    ("webp", "WEBP", {"lossless": True}),
    ("tiff", "TIFF", {}),
    ("avif", "AVIF", {"quality": 90}),
    # pillow-heif writes EXIF orientation *and* an irot/imir box, as phones do; libheif applies
    # the box while decoding, so applying EXIF again would rotate the photo twice.
    ("heic", "HEIF", {"quality": 90}),
]


@pytest.mark.parametrize("orientation", [6, 3, 8])
@pytest.mark.parametrize(
    ("fmt", "options"), [(f, o) for _, f, o in ORIENTED], ids=[i for i, _, _ in ORIENTED]
)
def test_orientation_is_applied_once(fmt: str, options: dict[str, object], orientation: int) -> None:
    # pillow-heif reads the orientation only from EXIF bytes, not from an Image.Exif object.
    data = save(asymmetric(), fmt, exif=with_orientation(orientation).tobytes(), **options)
    if fmt == "HEIF":
        assert b"irot" in data  # the transform is in the container, not only in EXIF
    (rows, cols), centre = UPRIGHT_RED[orientation]
    image = decode_image(data)
    assert image.rgb.shape == (rows, cols, 3)
    assert red_centre(image.rgb) == pytest.approx(centre, abs=1.0)


# --- refused formats ------------------------------------------------------------------------

REFUSED: list[tuple[str, Callable[[], bytes]]] = [
    ("ICO", lambda: save(asymmetric(), "ICO")),
    ("TGA", lambda: save(asymmetric(), "TGA")),
    ("PCX", lambda: save(asymmetric(), "PCX")),
    ("PPM", lambda: save(asymmetric(), "PPM")),
    ("QOI", lambda: save(asymmetric(), "QOI")),
    ("EPS", lambda: save(asymmetric(), "EPS")),
]


@pytest.mark.parametrize(("name", "make"), REFUSED, ids=[n for n, _ in REFUSED])
def test_other_formats_are_refused_by_name_before_decoding(
    name: str, make: Callable[[], bytes], forbid_decoding: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make()
    forbid_decoding()

    def no_ghostscript(*args: object, **kwargs: object) -> None:
        raise AssertionError("Ghostscript was run")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", no_ghostscript)
    for call in (decode_image, probe_image):
        with pytest.raises(errors.UnsupportedMediaTypeError) as caught:
            call(data)
        assert caught.value.status == 415
        assert f"Image format {name} is not supported" in caught.value.message
        assert "HEIC/HEIF" in caught.value.message and "JPEG" in caught.value.message
        assert caught.value.details == {"format": name}


# --- bad input, one error each --------------------------------------------------------------


def heic_claiming(width: int, height: int) -> bytes:
    """A real 96x64 HEIC whose 'ispe' box (the size in the header) says ``width`` x ``height``."""
    data = bytearray(save(asymmetric(), "HEIF", quality=90))
    at = data.find(b"ispe")
    assert at > 0 and struct.unpack(">II", data[at + 8 : at + 16]) == (WIDTH, HEIGHT)
    data[at + 8 : at + 16] = struct.pack(">II", width, height)
    return bytes(data)


def gif_with_frame(width: int, height: int) -> bytes:
    """A 64x48 GIF (logical screen) whose first frame's descriptor claims ``width`` x ``height``."""
    data = bytearray(save(Image.new("P", (64, 48)), "GIF"))
    flags = data[10]
    at = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)  # after the colour table
    while data[at] == 0x21:  # skip extension blocks
        at += 2
        while data[at]:
            at += data[at] + 1
        at += 1
    assert data[at] == 0x2C and struct.unpack("<HH", data[at + 5 : at + 9]) == (64, 48)
    data[at + 5 : at + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def truncated_heic() -> bytes:
    data = save(asymmetric(), "HEIF", quality=90)
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: b"", errors.EmptyImageError),
        (lambda: b"this is a text file, not a picture\n" * 3, errors.NotAnImageError),
        (lambda: png_claiming(30000, 30000), errors.DecompressionBombError),
        (lambda: encode(small_rgb(), "JPEG")[:300], errors.TruncatedImageError),
        (lambda: encode(small_rgb()[:8, :8], "PNG"), errors.ImageTooSmallError),
        # The header promises 64x64 RGB; the data holds 10 bytes.
        (lambda: png_claiming(64, 64), errors.TruncatedImageError),
        (truncated_heic, errors.TruncatedImageError),
        (lambda: truncated_heic()[:40], errors.TruncatedImageError),
        (lambda: save(asymmetric(), "AVIF")[:60], errors.TruncatedImageError),
        (lambda: save(asymmetric(), "TIFF")[:200], errors.TruncatedImageError),
        (lambda: save(asymmetric(), "WEBP")[:50], errors.TruncatedImageError),
        # libheif checks the decoded size against the header's and refuses a mismatch.
        (lambda: heic_claiming(48, 32), errors.TruncatedImageError),
        (lambda: heic_claiming(30_000, 30_000), errors.DecompressionBombError),
        (lambda: heic_claiming(40_000, 1_000), errors.ImageDimensionsUnsupportedError),
        # Pillow grows the canvas to the frame: the limits see the frame's size.
        (lambda: gif_with_frame(8_000, 8_000), errors.DecompressionBombError),
        (lambda: gif_with_frame(20_000, 2_000), errors.ImageDimensionsUnsupportedError),
    ],
    ids=[
        "empty",
        "text",
        "png-30000x30000",
        "truncated-jpeg",
        "8x8",
        "png-header-lies",
        "truncated-heic",
        "heic-40-bytes",
        "truncated-avif",
        "truncated-tiff",
        "truncated-webp",
        "heic-header-too-small",
        "heic-header-30000x30000",
        "heic-header-40000x1000",
        "gif-frame-8000x8000-on-64x48",
        "gif-frame-20000x2000-on-64x48",
    ],
)
def test_bad_input_has_its_own_error(
    make: Callable[[], bytes], expected: type[errors.FaceSocialError]
) -> None:
    payload = make()
    with pytest.raises(expected) as caught:
        decode_image(payload)
    assert 400 <= caught.value.status < 500
    assert caught.value.code == expected.code


def test_byte_limit_is_checked_before_decoding() -> None:
    data = encode(small_rgb(), "PNG")
    with pytest.raises(errors.ImageTooLargeError):
        decode_image(data, ImageLimits(max_image_bytes=len(data) - 1))


# --- shapes ---------------------------------------------------------------------------------


def grey_file(width: int, height: int, fmt: str) -> bytes:
    return save(Image.new("L", (width, height), 90), fmt)


def test_a_39kb_png_of_2500000x16_is_refused_from_its_header(forbid_decoding: Callable[[], None]) -> None:
    data = grey_file(2_500_000, 16, "PNG")
    assert len(data) < 60_000  # within the byte and the pixel limit (exactly 40 Mpx)
    forbid_decoding()
    with pytest.raises(errors.ImageDimensionsUnsupportedError) as caught:
        probe_image(data)
    assert caught.value.status == 422
    assert "2500000x16" in caught.value.message
    assert "16384" in caught.value.message
    with pytest.raises(errors.ImageDimensionsUnsupportedError):
        decode_image(data)


@pytest.mark.parametrize(
    ("width", "height", "fmt", "limit_in_message"),
    [
        (40_000, 1_000, "JPEG", "16384"),  # exactly 40 Mpx, longest side over the limit
        (16_000, 1_000, "JPEG", "8:1"),  # side fine, aspect ratio 16:1
        (1, 1_000, "PNG", "8:1"),
        (1_000, 1, "PNG", "8:1"),
        (17, 5_000, "PNG", "8:1"),
        (5_000, 17, "GIF", "8:1"),
    ],
)
def test_strips_are_refused_with_their_size_and_the_limit(
    width: int, height: int, fmt: str, limit_in_message: str, forbid_decoding: Callable[[], None]
) -> None:
    data = grey_file(width, height, fmt)
    forbid_decoding()
    with pytest.raises(errors.ImageDimensionsUnsupportedError) as caught:
        decode_image(data)
    assert f"{width}x{height}" in caught.value.message
    assert limit_in_message in caught.value.message
    assert caught.value.details["width"] == width and caught.value.details["height"] == height


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (8_064, 6_048, errors.DecompressionBombError),  # 48.8 Mpx phone photo: the pixel limit decides
        (16_385, 2_100, errors.ImageDimensionsUnsupportedError),
        (2_100, 16_385, errors.ImageDimensionsUnsupportedError),
        (100, 801, errors.ImageDimensionsUnsupportedError),  # 8.01:1
    ],
)
def test_header_limits(width: int, height: int, expected: type[errors.FaceSocialError]) -> None:
    with pytest.raises(expected):
        probe_image(png_claiming(width, height))


@pytest.mark.parametrize(
    ("width", "height"),
    [(8_000, 4_500), (6_000, 4_000), (16_384, 2_048), (100, 800), (2_048, 16_384), (16, 16)],
)
def test_legal_extremes_pass_the_header_checks(width: int, height: int) -> None:
    assert probe_image(png_claiming(width, height)) == ImageHeader("PNG", width, height)


def test_an_8000x4500_photo_decodes_whole() -> None:
    data = save(Image.new("RGB", (8_000, 4_500), (30, 60, 90)), "JPEG", quality=80)
    image = decode_image(data)
    assert image.rgb.shape == (4_500, 8_000, 3) and image.scale == 1.0
    assert image.rgb[::500, ::500].reshape(-1, 3).mean(axis=0) == pytest.approx((30, 60, 90), abs=2)


def test_limits_come_from_settings() -> None:
    data = grey_file(300, 100, "PNG")
    with pytest.raises(errors.ImageDimensionsUnsupportedError):
        decode_image(data, ImageLimits(max_aspect_ratio=2.5))
    with pytest.raises(errors.ImageDimensionsUnsupportedError):
        decode_image(data, ImageLimits(max_image_side=299))
    assert decode_image(data, ImageLimits(max_aspect_ratio=3.0, max_image_side=300)).width == 300


def test_env_overrides_reach_the_new_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    from facesocial.settings import Settings

    monkeypatch.setenv("FACESOCIAL_LIMITS__MAX_ASPECT_RATIO", "4")
    monkeypatch.setenv("FACESOCIAL_LIMITS__MAX_IMAGE_SIDE", "9000")
    monkeypatch.setenv("FACESOCIAL_LIMITS__MAX_DECODE_SIDE", "4096")
    limits = Settings().limits
    assert (limits.max_aspect_ratio, limits.max_image_side, limits.max_decode_side) == (4.0, 9000, 4096)


# --- optional downsampling (limits.max_decode_side) -----------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_max_decode_side_downsamples_and_reports_the_scale(fmt: str) -> None:
    rgb = np.zeros((1_200, 1_600, 3), np.uint8)
    rgb[:400, :400] = (255, 0, 0)  # top-left quarter-height block
    data = encode(rgb, fmt)
    image = decode_image(data, ImageLimits(max_decode_side=400))
    assert image.rgb.shape == (300, 400, 3)
    assert image.scale == pytest.approx(0.25)
    assert image.metadata()["scale"] == pytest.approx(0.25)
    assert red_centre(image.rgb) == pytest.approx((49.5, 49.5), abs=1.5)


def test_downsampling_happens_before_orientation() -> None:
    data = save(asymmetric(), "JPEG", quality=95, exif=with_orientation(6))
    image = decode_image(data, ImageLimits(max_decode_side=48, min_image_side=8))
    assert image.rgb.shape == (48, 32, 3)  # 96x64 -> 48x32, then turned upright
    assert red_centre(image.rgb) == pytest.approx((3.5, 27.5), abs=1.0)


# --- pixel modes ----------------------------------------------------------------------------


def test_alpha_is_flattened_onto_white() -> None:
    rgba = np.zeros((32, 32, 4), np.uint8)  # fully transparent black
    image = decode_image(encode(rgba, "PNG"))
    assert image.rgb.shape == (32, 32, 3)
    assert int(image.rgb.min()) == 255


def test_greyscale_becomes_three_channels() -> None:
    grey = np.full((32, 32), 77, np.uint8)
    image = decode_image(encode(grey, "PNG"))
    assert image.rgb.shape == (32, 32, 3)
    assert int(image.rgb[0, 0, 1]) == 77


def test_hostile_decoder_failures_are_4xx_not_500() -> None:
    """Random bytes behind each accepted format's magic number never escape as a 500."""
    rng = np.random.default_rng(7)
    magics = [b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"RIFF\0\0\0\0WEBPVP8 ", b"BM", b"GIF89a", b"II*\0"]
    magics += [b"\0\0\0\x18ftypheic", b"\0\0\0\x18ftypavif"]
    for magic in magics:
        for _ in range(20):
            noise = rng.integers(0, 256, int(rng.integers(1, 400)), dtype=np.uint8).tobytes()
            with pytest.raises(errors.FaceSocialError) as caught:
                decode_image(magic + noise)
            assert 400 <= caught.value.status < 500, (magic, caught.value.code)


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("JPEG", {"quality": 90}),
        ("WEBP", {"quality": 90}),
        ("HEIF", {"quality": 90}),
        ("AVIF", {"quality": 90}),
    ],
)
def test_a_real_photo_survives_each_lossy_format(
    astronaut_rgb: np.ndarray, fmt: str, options: dict[str, object]
) -> None:
    """Colour matrix and range of each decoder: the photo comes back close to the original."""
    rgb = decode_image(save(Image.fromarray(astronaut_rgb), fmt, **options)).rgb
    assert rgb.shape == astronaut_rgb.shape
    error = rgb.astype(np.float64) - astronaut_rgb
    psnr = 10 * np.log10(255**2 / float(np.mean(error**2)))
    assert psnr > 30, psnr
    assert np.abs(error.reshape(-1, 3).mean(axis=0)).max() < 2  # no colour cast
