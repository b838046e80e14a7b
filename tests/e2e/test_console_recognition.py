"""The console's Recognition view in Chromium with the real models: enrol two people, identify and
verify with other photos of them, a face group made in the page restricting identification, a
user looked up and erased, and a file that is not an image showing the API's error code.

Photos: ../shared/data/face_recognition_identities/examples (obama.jpg, obama2.jpg, biden.jpg);
without them these tests skip (the astronaut fixture stands in for no one: two people are needed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.conftest import shared_path
from tests.e2e.conftest import log_in, post_photo
from tests.integration.conftest import RunningServer

BASE = "/api/v1/face-recognition"
SLOW = 120_000


@pytest.fixture
def photos() -> dict[str, Path]:
    folder = shared_path("face_recognition_identities", "examples")
    return {
        "obama": folder / "obama.jpg",
        "obama_again": folder / "obama2.jpg",
        "biden": folder / "biden.jpg",
    }


def tab(page: Page, name: str) -> Locator:
    page.get_by_role("tab", name=name).click()
    panel = page.get_by_role("tabpanel", name=name)
    expect(panel).to_be_visible()
    return panel


def pick_group(select: Locator, name: str) -> None:
    """Choose the option whose text starts with the group's name (it goes on with its face count)."""
    option = select.locator("option", has_text=re.compile(f"^{re.escape(name)} \\("))
    select.select_option(option.get_attribute("value"))


def enrol(page: Page, photo: Path, name: str, group: str | None = None) -> str:
    panel = tab(page, "Enrol")
    panel.get_by_role("button", name="Generate UUID").click()
    user_id = panel.get_by_label("User ID").input_value()
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", user_id)
    panel.get_by_label("Name (optional").fill(name)
    panel.get_by_label("Photo").set_input_files(str(photo))
    if group:
        pick_group(panel.get_by_label("Group (optional)"), group)
    panel.get_by_label("The person consented").check()
    panel.get_by_role("button", name="Enrol").click()
    expect(panel.locator("code.enrolled-user")).to_have_text(user_id, timeout=SLOW)
    expect(panel.locator("canvas.face-canvas")).to_have_attribute("data-faces", "1")
    return user_id


def identify(page: Page, photo: Path, group: str | None = None) -> Locator:
    panel = tab(page, "Identify")
    panel.get_by_label("Photo").set_input_files(str(photo))
    select = panel.get_by_label("Search in group (optional)")
    if group:
        pick_group(select, group)
    else:
        select.select_option("")
    panel.get_by_role("button", name="Identify").click()
    expect(panel.locator("canvas.face-canvas")).to_be_visible(timeout=SLOW)
    return panel


def verify(page: Page, photo: Path, user_id: str, mode: str = "balanced") -> Locator:
    panel = tab(page, "Verify")
    panel.get_by_label("Photo", exact=True).set_input_files(str(photo))
    panel.get_by_label("Compare with").select_option("user")
    panel.get_by_label("User ID").fill(user_id)
    panel.get_by_label("Mode").select_option(mode)
    panel.get_by_role("button", name="Verify").click()
    verdict = panel.locator(".verdict")
    expect(verdict).to_be_visible(timeout=SLOW)
    return verdict


def test_enrol_two_people_then_identify_and_verify(
    page: Page, console_server: RunningServer, new_key: Callable[..., str], photos: dict[str, Path]
) -> None:
    key = new_key()
    log_in(page, key, "recognition")
    obama = enrol(page, photos["obama"], "Obama")
    biden = enrol(page, photos["biden"], "Biden")
    assert obama != biden
    # The in-tab list offers both (newest first) and the datalist suggests them.
    enrolled = page.get_by_role("table", name="Users enrolled in this browser tab")
    expect(enrolled.locator("tbody tr")).to_have_count(2)
    expect(enrolled.locator("tbody tr").first).to_contain_text(biden)
    suggested = page.locator("#recognition-users option").evaluate_all("o => o.map(x => x.value)")
    assert suggested == [biden, obama]

    panel = identify(page, photos["obama_again"])
    truth = post_photo(console_server, key, BASE + "/identify", photos["obama_again"], top_k="5")
    rows = panel.locator("table tbody tr")
    expect(rows).to_have_count(len(truth["candidates"]))
    expect(rows.first.locator("code.candidate-user")).to_have_text(obama)
    assert truth["candidates"][0]["user_id"] == obama
    expect(rows.first).to_contain_text("Obama")
    expect(rows.first).to_contain_text(f"{truth['candidates'][0]['similarity']:.4f}")
    expect(panel).to_contain_text(f"Gallery size{truth['gallery_size']}")
    # The query face's box, drawn where the API found it.
    boxes = json.loads(panel.locator("canvas.face-canvas").get_attribute("data-boxes") or "[]")
    want = [truth["face"]["bbox"][k] for k in ("x", "y", "width", "height")]
    assert len(boxes) == 1 and all(abs(a - b) <= 1 for a, b in zip(boxes[0], want, strict=True))

    same = verify(page, photos["obama_again"], obama)
    expect(same).to_have_attribute("data-match", "true")
    expect(same).to_contain_text("Match")
    other = verify(page, photos["obama_again"], biden, mode="strict")
    expect(other).to_have_attribute("data-match", "false")
    expect(other).to_contain_text("No match")
    truth = post_photo(
        console_server, key, BASE + "/verify", photos["obama_again"], user_id=biden, mode="strict"
    )
    assert truth["match"] is False
    panel = page.get_by_role("tabpanel", name="Verify")
    expect(panel).to_contain_text(f"{truth['similarity']:.4f}")
    expect(panel).to_contain_text(f"{truth['threshold']:.4f} (strict)")


def test_group_made_in_the_page_restricts_identification(
    page: Page, console_server: RunningServer, new_key: Callable[..., str], photos: dict[str, Path]
) -> None:
    key = new_key()
    log_in(page, key, "recognition")
    panel = tab(page, "Groups")
    expect(panel.get_by_text("No group yet.")).to_be_visible()
    panel.get_by_label("Group name").fill("Senate")
    panel.get_by_role("button", name="Create group").click()
    expect(panel.locator("h3", has_text="Group “Senate”")).to_be_visible()
    expect(panel.get_by_role("table", name="Members")).to_have_count(0)
    # Biden is enrolled straight into the group (the Enrol form's group choice), Obama is not.
    obama = enrol(page, photos["obama"], "Obama")
    biden = enrol(page, photos["biden"], "Biden", group="Senate")
    panel = tab(page, "Groups")
    panel.get_by_role("button", name="Members of Senate").click()
    members = panel.get_by_role("table", name="Members")
    expect(members.locator("code.member-user")).to_have_text([biden])
    # The API agrees: this tenant has one group, with Biden's face in it.
    listed = httpx.get(f"{console_server.base}{BASE}/groups", headers={"X-API-Key": key}).json()
    assert [(g["group_name"], g["face_count"]) for g in listed["groups"]] == [("Senate", 1)]
    group_id = listed["groups"][0]["group_id"]
    detail = httpx.get(f"{console_server.base}{BASE}/groups/{group_id}", headers={"X-API-Key": key}).json()
    assert [m["user_id"] for m in detail["group"]["members"]] == [biden]
    expect(panel.get_by_role("table", name=re.compile("Groups of this tenant"))).to_contain_text("Senate")

    # Obama's photo against the group: Obama is not in it, so nobody is identified ...
    result = identify(page, photos["obama_again"], group="Senate")
    expect(result.locator(".verdict")).to_contain_text("Unknown")
    expect(result).to_contain_text("group Senate")
    expect(result).to_contain_text("Gallery size1")
    # ... and against the whole gallery he is.
    result = identify(page, photos["obama_again"])
    expect(result.locator("code.candidate-user").first).to_have_text(obama)

    # Add Obama, then his photo in the group finds him; remove him again, delete the group.
    panel = tab(page, "Groups")
    # The group's panel is drawn again when its members arrive: type into the new one.
    with page.expect_response(lambda r: r.url.endswith(f"/groups/{group_id}")):
        panel.get_by_role("button", name="Members of Senate").click()
    expect(panel.get_by_label("User ID to add")).to_have_value("")
    panel.get_by_label("User ID to add").fill(obama)
    panel.get_by_role("button", name="Add to group").click()
    expect(panel.get_by_role("table", name="Members").locator("code.member-user")).to_have_count(2)
    result = identify(page, photos["obama_again"], group="Senate")
    expect(result.locator("code.candidate-user").first).to_have_text(obama)
    panel = tab(page, "Groups")
    panel.get_by_role("button", name=f"Remove {obama}").click()
    expect(panel.get_by_role("table", name="Members").locator("code.member-user")).to_have_text([biden])
    panel.get_by_role("button", name="Delete Senate").click()
    panel.get_by_role("button", name="Delete group").click()
    expect(panel.get_by_text("No group yet.")).to_be_visible()
    listed = httpx.get(f"{console_server.base}{BASE}/groups", headers={"X-API-Key": key}).json()
    assert listed["total"] == 0


def test_look_up_and_erase_a_user(
    page: Page, console_server: RunningServer, new_key: Callable[..., str], photos: dict[str, Path]
) -> None:
    key = new_key()
    log_in(page, key, "recognition")
    user_id = enrol(page, photos["biden"], "Biden")

    def user_status() -> int:
        url = f"{console_server.base}{BASE}/users/{user_id}"
        return httpx.get(url, headers={"X-API-Key": key}).status_code

    in_tab = page.get_by_role("table", name="Users enrolled in this browser tab")
    in_tab.get_by_role("button", name="Look up").click()
    panel = page.get_by_role("tabpanel", name="User")
    expect(panel.get_by_label("User ID")).to_have_value(user_id)
    panel.get_by_role("button", name="Look up").click()
    faces = panel.get_by_role("table", name="Faces")
    expect(faces.locator("tbody tr")).to_have_count(1, timeout=SLOW)
    truth = httpx.get(f"{console_server.base}{BASE}/users/{user_id}", headers={"X-API-Key": key}).json()
    expect(faces).to_contain_text(truth["faces"][0]["face_id"])
    # Erasing asks first; Cancel keeps the user.
    panel.get_by_role("button", name="Erase this user…").click()
    panel.get_by_role("button", name="Cancel").click()
    assert user_status() == 200
    panel.get_by_role("button", name="Erase this user…").click()
    panel.get_by_role("button", name="Erase permanently").click()
    expect(panel.get_by_role("status")).to_contain_text("1 face(s)")
    assert user_status() == 404
    # The in-tab list forgot it, and looking it up now shows the API's code.
    expect(page.locator("#recognition-users option")).to_have_count(0)
    panel.get_by_role("button", name="Look up").click()
    expect(panel.get_by_role("alert")).to_contain_text("USER_NOT_FOUND")


def test_bad_input_shows_the_api_code_and_the_page_keeps_working(
    page: Page, new_key: Callable[..., str], tmp_path: Path, photos: dict[str, Path]
) -> None:
    log_in(page, new_key(), "recognition")
    text = tmp_path / "notes.txt"
    text.write_text("not a photo")
    panel = tab(page, "Enrol")
    panel.get_by_role("button", name="Generate UUID").click()
    panel.get_by_label("Photo").set_input_files(str(text))
    panel.get_by_label("The person consented").check()
    panel.get_by_role("button", name="Enrol").click()
    expect(panel.get_by_role("alert")).to_contain_text("NOT_AN_IMAGE")
    expect(panel.get_by_role("button", name="Enrol")).to_be_enabled()
    # Identify with nobody enrolled in a photo without a problem, then a real enrolment works.
    panel.get_by_label("Photo").set_input_files(str(photos["biden"]))
    panel.get_by_role("button", name="Enrol").click()
    expect(panel.locator("code.enrolled-user")).to_be_visible(timeout=SLOW)
    expect(panel.get_by_role("alert")).to_have_count(0)
    # Verify against an unknown user: the API's code again.
    verdict_panel = tab(page, "Verify")
    verdict_panel.get_by_label("Photo", exact=True).set_input_files(str(photos["biden"]))
    verdict_panel.get_by_label("User ID").fill("00000000-0000-4000-8000-000000000000")
    verdict_panel.get_by_role("button", name="Verify").click()
    expect(verdict_panel.get_by_role("alert")).to_contain_text("USER_NOT_FOUND", timeout=SLOW)


def test_phone_width_has_no_horizontal_scroll(
    page: Page, new_key: Callable[..., str], photos: dict[str, Path]
) -> None:
    page.set_viewport_size({"width": 375, "height": 800})
    log_in(page, new_key(), "recognition")
    enrol(page, photos["biden"], "Biden")
    for name in ["Enrol", "Verify", "Identify", "Groups", "User"]:
        tab(page, name)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, name
    # The tabs follow the keyboard: arrow keys move between them.
    page.get_by_role("tab", name="User").focus()
    page.keyboard.press("Home")
    expect(page.get_by_role("tab", name="Enrol")).to_be_focused()
    expect(page.get_by_role("tab", name="Enrol")).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tabpanel", name="Verify")).to_be_visible()


def test_enrol_from_a_two_person_photo_needs_a_face_index_and_the_page_offers_the_faces(
    page: Page, console_server: RunningServer, new_key: Callable[..., str]
) -> None:
    photo = shared_path("face_recognition_identities", "examples", "two_people.jpg")
    key = new_key()
    log_in(page, key, "recognition")
    detected = post_photo(console_server, key, "/api/v1/face-detection/detect", photo)
    count = len(detected["faces"])
    assert count >= 2, "the photo shows two people"
    panel = tab(page, "Enrol")
    panel.get_by_role("button", name="Generate UUID").click()
    user_id = panel.get_by_label("User ID").input_value()
    panel.get_by_label("Photo").set_input_files(str(photo))
    panel.get_by_label("The person consented").check()
    panel.get_by_role("button", name="Enrol").click()
    # The API's code, the plain words, and the detected faces drawn and numbered where the API found them.
    expect(panel.get_by_role("alert")).to_contain_text("MULTIPLE_FACES", timeout=SLOW)
    expect(panel.locator(".face-choice-help")).to_contain_text(f"This photo shows {count} faces")
    expect(panel.locator(".face-choice-help")).to_contain_text("face index")
    canvas = panel.locator(".face-picker canvas.face-canvas")
    expect(canvas).to_have_attribute("data-faces", str(count))
    boxes = json.loads(canvas.get_attribute("data-boxes") or "[]")
    for drawn, face in zip(boxes, detected["faces"], strict=True):
        want = [face["bbox"][k] for k in ("x", "y", "width", "height")]
        assert all(abs(a - b) <= 1 for a, b in zip(drawn, want, strict=True))
    expect(panel.locator(".face-choices button")).to_have_count(count)
    # Choosing face 2 fills the face index; enrolling then takes that face.
    panel.get_by_role("button", name="Use face 2 (index 1)").click()
    expect(panel.get_by_label("Face index")).to_have_value("1")
    panel.get_by_role("button", name="Enrol").click()
    expect(panel.locator("code.enrolled-user")).to_have_text(user_id, timeout=SLOW)
    expect(panel.get_by_role("alert")).to_have_count(0)
    expect(panel.locator(".face-picker")).to_have_count(0)
    enrolled = panel.locator("canvas.face-canvas")
    expect(enrolled).to_have_attribute("data-faces", "1")
    box = json.loads(enrolled.get_attribute("data-boxes") or "[]")[0]
    second = [detected["faces"][1]["bbox"][k] for k in ("x", "y", "width", "height")]
    assert all(abs(a - b) <= 2 for a, b in zip(box, second, strict=True))
    expect(panel).to_contain_text("face index 1")
    # The API agrees: one face enrolled for this user.
    user = httpx.get(f"{console_server.base}{BASE}/users/{user_id}", headers={"X-API-Key": key}).json()
    assert len(user["faces"]) == 1
    # A blocked submit (no consent ticked) clears the previous success message.
    panel.get_by_role("button", name="Generate UUID").click()
    panel.get_by_label("The person consented").uncheck()
    panel.get_by_role("button", name="Enrol").click()
    expect(panel.locator("code.enrolled-user")).to_have_count(0)
    expect(panel.locator(".alert.ok")).to_have_count(0)

    # Identify on the same photo says how many faces there were and which one was searched.
    result = identify(page, photo)
    truth = post_photo(console_server, key, BASE + "/identify", photo, top_k="5")
    note = result.locator(".faces-note")
    expect(note).to_contain_text(f"{truth['faces_detected']} faces were found")
    expect(note).to_contain_text("only the largest face (face index 0) was searched")
    # Verify shows the similarity once.
    verdict = verify(page, photo, user_id)
    expect(verdict).to_be_visible()
    verify_panel = page.get_by_role("tabpanel", name="Verify")
    expect(verify_panel.locator("dt", has_text="Similarity")).to_have_count(1)
    expect(verify_panel.locator(".score-label", has_text="Similarity")).to_have_count(0)


def test_a_liveness_token_handed_over_fills_the_enrol_form(page: Page, new_key: Callable[..., str]) -> None:
    log_in(page, new_key(), "liveness")
    # What the Liveness view's "Use for enrolment" does: the token through sessionStorage.
    page.evaluate(
        "sessionStorage.setItem('facesocial.console.enrol-liveness-token', 'tok_example'); "
        "location.hash = '#/recognition?enrol'"
    )
    panel = page.get_by_role("tabpanel", name="Enrol")
    expect(panel.get_by_label("Liveness session token")).to_have_value("tok_example")
    assert page.evaluate("sessionStorage.getItem('facesocial.console.enrol-liveness-token')") is None
    assert "tok_example" not in page.url
