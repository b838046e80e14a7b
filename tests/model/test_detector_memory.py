"""Detection memory is bounded whatever the photo's shape (peak RSS growth, in a subprocess).

Before the bounded working copies, BlazeFace padded the *full-resolution* photo by a quarter
of its long side when it found nothing: ~0.5 GB for 12000x3000, ~3.8 GB for 40000x1000. Now
every pass works on a copy of at most ``max_working_pixels`` (4 Mpx) plus a batch of model
inputs, so detection adds at most ``BOUND_MB`` to the process's peak, beyond the photo itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.model

# 4 Mpx working copy (12 MB) + its pyramid + one batch of model inputs (≤ 1.7 Mpx: 16 BlazeFace
# or 4 RetinaFace inputs) + ONNX Runtime's arena for it + per-face crops: measured 0-21 MB with
# BlazeFace, 44-55 MB with RetinaFace (181-416 MB before its batch was bounded by pixels; the
# single BlazeFace pass before the working copies: 463 MB on 12000x3000); 160 MB leaves room for
# allocator noise.
BOUND_MB = 160

SCRIPT = """
import json, resource, sys
import numpy as np
from pathlib import Path
from facesocial.container import Container
from facesocial.settings import ModelSettings, Settings
from facesocial.vision.pipeline import DetectOptions

width, height, model_dir, detector = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
settings = Settings(models=ModelSettings(model_dir=Path(model_dir), detector=detector))
pipeline = Container(settings).pipeline
# Warm up on a mid-size photo: model sessions and inference arenas exist before measuring.
warm = np.random.default_rng(1).integers(0, 256, (2400, 2400, 3), dtype=np.uint8)
pipeline.detect(warm, DetectOptions())
del warm
photo = np.empty((height, width, 3), dtype=np.uint8)
rng = np.random.default_rng(0)
for y in range(0, height, 256):  # row blocks: no full-size temporary
    rows = photo[y : y + 256]
    rows[:] = rng.integers(0, 256, rows.shape, dtype=np.uint8)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
faces = pipeline.detect(photo, DetectOptions())
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_mb": (after - before) / 1024.0, "faces": len(faces)}))
"""


@pytest.mark.parametrize(
    ("width", "height", "detector"),
    [
        (12000, 3000, "blazeface_full"),
        (300, 8000, "blazeface_full"),
        (40000, 1000, "blazeface_full"),
        (12000, 3000, "dlib_hog"),
        (12000, 3000, "retinaface_mnet025"),
        (40000, 1000, "retinaface_mnet025"),
    ],
)
def test_detection_peak_memory_is_bounded(
    request: pytest.FixtureRequest, width: int, height: int, detector: str
) -> None:
    # RetinaFace comes from its own wheel (tests/model/conftest.py); the rest from the pack.
    folder: Path = request.getfixturevalue("retina_dir" if detector == "retinaface_mnet025" else "model_dir")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(width), str(height), str(folder), detector],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["growth_mb"] < BOUND_MB, report
