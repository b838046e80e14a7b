"""/console serves the files of its static folder and nothing else: hostile names are a 404
(never a 500), and every answer, 404 included, carries the console's security headers."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from facesocial.api import errors
from facesocial.console import router as console

HOSTILE = [
    "/console/assets/..%2f..%2f__init__.py",
    "/console/assets/%2e%2e/router.py",
    "/console/assets/%252e%252e/router.py",
    "/console/assets/js%5c..%5c..%5crouter.py",
    "/console/assets/%2fetc%2fpasswd",
    "/console/assets/.hidden.js",
    "/console/assets/nonexistent.js",
    "/console/assets/js",
    "/console/assets/index.html%00.js",  # an embedded NUL once reached Path.resolve(): 500
    "/console/assets/" + "a" * 300 + ".js",  # ENAMETOOLONG: 500
    "/console/assets/" + "a/" * 3000 + "x.js",
]


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    errors.install(app)
    app.include_router(console.router)
    return TestClient(app)


def test_every_static_file_is_served_with_its_type_and_headers(client: TestClient) -> None:
    names = set(console._FILES)
    assert {"index.html", "js/app.js", "js/api.js", "js/ui.js", "css/console.css", "favicon.svg"} <= names
    assert {
        f"js/pages/{view}.js" for view in ["detect", "recognition", "liveness", "counting", "keys"]
    } <= names
    for name in names:
        answer = client.get(f"/console/assets/{name}")
        assert answer.status_code == 200, name
        assert (
            answer.headers["content-type"].split(";")[0]
            == console._MEDIA_TYPES["." + name.rsplit(".", 1)[1]].split(";")[0]
        )
        assert answer.headers["content-security-policy"] == console.CONTENT_SECURITY_POLICY
        assert answer.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", HOSTILE)
def test_hostile_names_are_a_404_with_the_security_headers(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["code"] == "NOT_FOUND"
    assert answer.headers["content-security-policy"] == console.CONTENT_SECURITY_POLICY
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_head_and_both_page_paths(client: TestClient) -> None:
    for path in ["/console", "/console/"]:
        page = client.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert client.head(path).status_code == 200
    assert client.head("/console/assets/js/app.js").status_code == 200
    assert client.post("/console").status_code == 405
