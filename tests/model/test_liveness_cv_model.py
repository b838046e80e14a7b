"""``facesocial eval liveness --cross-validate`` on a small NUAA subset (real detector, real features).

The subset (every 7th frame of each NUAA subject, live and print) is linked into a temporary
tree with NUAA's layout, so the command groups by subject exactly as on the full folder.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facesocial.evaluation.liveness_cv import recipe_c
from tests.conftest import shared_path

pytestmark = [pytest.mark.model, pytest.mark.shared_data]

STEP = 7


def _subset(tmp_path: Path) -> Path:
    nuaa = shared_path("nuaa_antispoof")
    root = tmp_path / "nuaa_antispoof"
    for folder in ("ClientRaw", "ImposterRaw"):
        for subject in sorted(p for p in (nuaa / folder).iterdir() if p.is_dir()):
            target = root / folder / subject.name
            target.mkdir(parents=True)
            for image in sorted(subject.glob("*.jpg"))[::STEP]:
                (target / image.name).symlink_to(image)
    return root


def test_cross_validate_on_a_nuaa_subset(tmp_path: Path, model_dir: Path) -> None:
    from facesocial.cli import app

    root = _subset(tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "liveness",
            "--live",
            str(root / "ClientRaw"),
            "--attack",
            f"photo={root / 'ImposterRaw'}",
            "--cross-validate",
            "--json",
        ],
        # The pulled pack's detector, as the service uses (not whatever the default folder holds).
        env={"FACESOCIAL_MODELS__MODEL_DIR": str(model_dir), "FACESOCIAL_DATA_DIR": str(tmp_path / "data")},
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    cv = report["cross_validation"]
    assert cv is not None, report.get("cross_validation_error")
    # Live and printed frames of one subject form one group: 5 subjects, 5 folds.
    assert cv["folds"] == 5
    assert sorted(cv["per_group"]) == [f"nuaa_antispoof/000{i}" for i in range(1, 6)]
    for row in cv["per_group"].values():
        assert set(row["counts"]) == {"live", "photo"}
    # C is read from the shipped manifest's recipe, not assumed.
    manifest = json.loads(
        resources.files("facesocial.antispoof").joinpath("weights/liveness_passive.manifest.json").read_text()
    )
    assert cv["c"] == pytest.approx(recipe_c(manifest)[0])
    assert cv["classes"] == ["live", "photo"]
    n = sum(report["counts"].values())
    assert cv["at_default_threshold"]["at_threshold"]["n_bona_fide"] == report["counts"]["live"]
    assert n == sum(sum(r["counts"].values()) for r in cv["per_group"].values())
    # The cues carry across NUAA subjects: out-of-fold EER well below chance.
    assert cv["at_default_threshold"]["eer"] < 0.25
    assert cv["at_protocol_threshold"]["at_threshold"]["bpcer"] <= 0.05
