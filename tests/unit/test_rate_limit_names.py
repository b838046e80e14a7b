"""Every limit a route counts against has a default: a name missing from the defaults would
leave its routes unlimited without a word (``rate_limited`` skips unknown names)."""

from __future__ import annotations

import re
from pathlib import Path

import facesocial
from facesocial.settings import RateLimitSettings

SOURCE = Path(facesocial.__file__).parent


def test_every_rate_limited_name_has_a_default_limit() -> None:
    used = {
        name
        for path in SOURCE.rglob("*.py")
        for name in re.findall(r'rate_limited\(\s*"([a-z_]+)"\s*\)', path.read_text(encoding="utf-8"))
    }
    assert {"face_detection", "experiments", "models", "counting_videos"} <= used
    missing = used - set(RateLimitSettings().limits)
    assert not missing, f"routes count against limits without a default: {sorted(missing)}"
