"""Where the evaluation data lives: ``$FACESOCIAL_SHARED_DATA``, else ``../shared/data``.

The commands' defaults (``eval attention``, ``eval persons``, ``eval tracking``'s examples,
``bench counting``) follow the same variable as the tests (tests/conftest.py), so a checkout that
is not beside ``shared/`` needs one export, not a path per command.
"""

from __future__ import annotations

import os
from pathlib import Path


def shared_data_dir() -> Path:
    """``$FACESOCIAL_SHARED_DATA`` if set (non-empty), else ``../shared/data`` (relative to the
    working directory, as in the docs' commands)."""
    return Path(os.environ.get("FACESOCIAL_SHARED_DATA") or "../shared/data")
