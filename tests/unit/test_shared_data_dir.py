"""The evaluation commands find the data where the tests do: $FACESOCIAL_SHARED_DATA first."""

from __future__ import annotations

from pathlib import Path

import pytest

from facesocial.evaluation.shared_data import shared_data_dir


def test_the_variable_wins_and_an_empty_one_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACESOCIAL_SHARED_DATA", "/srv/data")
    assert shared_data_dir() == Path("/srv/data")
    monkeypatch.setenv("FACESOCIAL_SHARED_DATA", "")
    assert shared_data_dir() == Path("../shared/data")
    monkeypatch.delenv("FACESOCIAL_SHARED_DATA")
    assert shared_data_dir() == Path("../shared/data")
