"""Peak memory and time of decoding the worst legal uploads (and refusing illegal ones).

Each case is encoded here with real encoders (Pillow, pillow-heif, OpenCV), written to a
temporary folder, and decoded by :func:`facesocial.vision.image.decode_image` in a fresh
Python process, so one case's allocations cannot hide another's. Peak RSS is the kernel's
high-water mark (VmHWM) reset just before the decode (``/proc/self/clear_refs``), so it is
the decode's own peak; ``peak_per_output`` divides the growth by the RGB output's size.

Run: ``python -m facesocial.evaluation.bench_decode [case ...]``. Linux only (procfs).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from facesocial.settings import ImageLimits

_MB = 1024 * 1024
_MODULE = "facesocial.evaluation.bench_decode"  # run as the child process


def _photo_like(
    width: int, height: int, channels: int = 3, noise: float = 3.0, seed: int = 0
) -> npt.NDArray[np.uint8]:
    """Smooth shapes plus sensor-like noise (``noise``: standard deviation in grey levels).

    Lossless formats get no noise so that 40 Mpx stays within the 20 MiB byte limit; decoding
    memory depends on the pixel count and mode, not on the content.
    """
    rng = np.random.default_rng(seed)
    out = np.empty((height, width, channels), np.uint8)
    x = np.arange(width, dtype=np.float32)
    for top in range(0, height, 256):
        y = np.arange(top, min(height, top + 256), dtype=np.float32)[:, None]
        for c in range(channels):
            wave = 128 + 60 * np.sin(x / (97 + 31 * c)) * np.cos(y / (83 + 17 * c))
            wave += 40 * np.sin((x + y) / 401)
            if noise:
                wave += rng.normal(0, noise, wave.shape).astype(np.float32)
            out[top : top + len(y), :, c] = np.clip(wave, 0, 255).astype(np.uint8)
    return out


def _pillow(array: npt.NDArray[Any], fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _jpeg_40mpx() -> bytes:
    return _pillow(_photo_like(8_000, 5_000), "JPEG", quality=90)


def _png16_grey_40mpx() -> bytes:
    grey = _photo_like(8_000, 5_000, channels=1, noise=0)[..., 0].astype(np.uint16) * 257
    return _pillow(grey, "PNG")


def _png48_rgb_40mpx() -> bytes:
    # Pillow cannot write 16 bits per channel RGB; OpenCV can (it takes BGR, irrelevant here).
    rgb16 = _photo_like(8_000, 5_000, noise=0).astype(np.uint16) * 257
    ok, encoded = cv2.imencode(".png", rgb16, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    assert ok
    return bytes(encoded)


def _png_rgba_40mpx() -> bytes:
    rgba = _photo_like(8_000, 5_000, channels=4, noise=0)
    return _pillow(rgba, "PNG")


def _heic_8000x4500() -> bytes:
    from facesocial.vision.image_formats import register_plugins

    register_plugins()
    return _pillow(_photo_like(8_000, 4_500, noise=1.0), "HEIF", quality=60)


def _avif_8000x4500() -> bytes:
    return _pillow(_photo_like(8_000, 4_500), "AVIF", quality=70, speed=10)


def _png_2500000x16() -> bytes:
    return _pillow(np.zeros((16, 2_500_000), np.uint8), "PNG")


def _jpeg_40000x1000() -> bytes:
    return _pillow(np.full((1_000, 40_000), 90, np.uint8), "JPEG")


CASES: dict[str, Callable[[], bytes]] = {
    "jpeg-8000x5000": _jpeg_40mpx,
    "png16-grey-8000x5000": _png16_grey_40mpx,
    "png16-rgb-8000x5000": _png48_rgb_40mpx,
    "png-rgba-8000x5000": _png_rgba_40mpx,
    "heic-8000x4500": _heic_8000x4500,
    "avif-8000x4500": _avif_8000x4500,
    "png-2500000x16": _png_2500000x16,
    "jpeg-40000x1000": _jpeg_40000x1000,
}


def bench_decode(
    cases: Sequence[str] | None = None, limits: ImageLimits | None = None
) -> list[dict[str, Any]]:
    """Decode each named case (default: all of :data:`CASES`) in its own process.

    Returns one dict per case: ``case``, ``file_bytes``, ``outcome`` (``"WxH"`` or an error
    code), ``decode_s``, ``rss_before_mb``, ``peak_rss_mb``, ``peak_growth_mb``, ``output_mb``
    and ``peak_per_output`` (growth / output; None when refused).

    Raises:
        KeyError: an unknown case name.
    """
    names = list(cases or CASES)
    limits = limits or ImageLimits()
    results = []
    with tempfile.TemporaryDirectory(prefix="facesocial-bench-decode-") as folder:
        for name in names:
            path = Path(folder) / name
            path.write_bytes(CASES[name]())
            command = [sys.executable, "-m", _MODULE, "--measure", str(path), limits.model_dump_json()]
            child = subprocess.run(command, capture_output=True, text=True, check=True)
            results.append({"case": name, **json.loads(child.stdout)})
            path.unlink()
    return results


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} is not in /proc/self/status")


def _measure(path: Path, limits: ImageLimits) -> dict[str, Any]:
    """Runs in the child process: one decode, its time and its peak RSS."""
    from facesocial import errors
    from facesocial.vision.image import decode_image

    decode_image(_pillow(np.zeros((32, 32, 3), np.uint8), "PNG"), limits)  # imports, plugins
    data = path.read_bytes()
    before = _rss_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    start = time.perf_counter()
    try:
        image = decode_image(data, limits)
        outcome = f"{image.width}x{image.height}"
        output_mb = image.rgb.nbytes / _MB
    except errors.FaceSocialError as exc:
        outcome, output_mb = exc.code, 0.0
    seconds = time.perf_counter() - start
    peak = _rss_mb("VmHWM")
    return {
        "file_bytes": len(data),
        "outcome": outcome,
        "decode_s": round(seconds, 3),
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(peak, 1),
        "peak_growth_mb": round(peak - before, 1),
        "output_mb": round(output_mb, 1),
        "peak_per_output": round((peak - before) / output_mb, 2) if output_mb else None,
    }


def main(argv: Sequence[str]) -> None:
    if argv[:1] == ["--measure"]:
        print(json.dumps(_measure(Path(argv[1]), ImageLimits.model_validate_json(argv[2]))))
        return
    for row in bench_decode(argv or None):
        print(json.dumps(row))


if __name__ == "__main__":
    main(sys.argv[1:])
