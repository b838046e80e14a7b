"""/health/ready names every model family the server can serve, people counting's included."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import Api

pytestmark = pytest.mark.integration


def test_readiness_lists_the_pulled_person_detectors(api: Api, model_dir: Path) -> None:
    models = api.client.get("/health/ready").json()["checks"]["models"]
    detectors = models["person_detectors"]
    if not detectors:
        pytest.skip("no person detector is converted here (make test fetches the model pack)")
    assert all(tag.split("@")[0] in ("nanodet", "centernet") for tag in detectors)
    # The same tags the registry lists as the person_detection slot's installed versions.
    installed = {
        v["version"] for v in api.container.registry.versions("person_detection") if v["is_installed"]
    }
    assert set(detectors) == installed
