"""The registry lists a version for a slot only when the slot's service can run it.

The integration test tests/integration/test_registry_regressions.py compares the installed set of
every slot with what a real container's services run; these checks keep the catalogue's model
lists in step with the services' own constants without loading a model.
"""

from __future__ import annotations

from facesocial.domains.registry.catalogue import SLOT_INFO, slots_of
from facesocial.services.serving_context import FACE_DETECTORS
from facesocial.vision.persons import PERSON_DETECTORS


def test_every_slot_names_the_models_its_service_runs() -> None:
    assert all(info.only_listed for info in SLOT_INFO.values())
    assert set(SLOT_INFO["face_detection"].models) == set(FACE_DETECTORS)
    assert set(SLOT_INFO["person_detection"].models) == set(PERSON_DETECTORS)
    # services/demographics.py runs the attribute analyser, which runs faceres' head only.
    assert SLOT_INFO["demographics"].models == ("faceres",)


def test_age_models_the_demographics_service_cannot_run_fill_no_slot() -> None:
    assert slots_of("gear", "age+gender+race") == []
    assert slots_of("age_ssrnet", "age") == []
    assert slots_of("faceres", "face_embedding+age+gender") == ["face_embedding", "demographics"]
    assert slots_of("someone_elses_pad", "face_presentation_attack_detection") == []
