"""HTTP at its edges: made-up methods in the metrics, trailing slashes, unknown paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from tests.integration.test_api_limits import app_with, code_of

pytestmark = pytest.mark.integration
REGISTER = "/api/v1/face-recognition/register"


def _series(method: str) -> list[str]:
    return [
        f"{sample.name}{sample.labels}"
        for metric in REGISTRY.collect()
        if metric.name.startswith("http_request")
        for sample in metric.samples
        if sample.labels.get("method") == method
    ]


def test_made_up_methods_share_one_metrics_label(tmp_path: Path, optional_model_dir: Path | None) -> None:
    with app_with(tmp_path, optional_model_dir) as (client, _container, key):

        def junk(n: int) -> None:
            response = client.request(f"ZZQ{n}", "/health")
            assert code_of(response) == (405, "METHOD_NOT_ALLOWED")
            client.request(f"YY{n}", f"/api/v1/nowhere/{n}", headers={"X-API-Key": key})

        junk(0)
        after_one = len(_series("OTHER"))
        for n in range(1, 20):
            junk(n)
        text = client.get("/metrics").text
    # Twenty made-up methods on twenty paths make no more series than one did: every method
    # outside the standard set is "OTHER", every unknown path "unmatched".
    assert after_one > 0 and len(_series("OTHER")) == after_one
    assert "ZZQ" not in text and "YY1" not in text
    assert 'http_requests_total{endpoint="/health",method="OTHER",status="405"}' in text
    assert 'http_requests_total{endpoint="unmatched",method="OTHER",status="404"}' in text
    assert "/api/v1/nowhere" not in text


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_trailing_slash_is_not_redirected(
    tmp_path: Path, optional_model_dir: Path | None, method: str
) -> None:
    with app_with(tmp_path, optional_model_dir) as (client, _container, key):
        path = f"{REGISTER}/" if method == "POST" else "/api/v1/face-recognition/groups/"
        response = client.request(
            method, path, headers={"X-API-Key": key, "Host": "evil.example"}, follow_redirects=False
        )
        # No 307 to the client-sent Host over http:// (a client would resend body and key there).
        assert code_of(response) == (404, "NOT_FOUND")
        assert "location" not in response.headers
        assert client.get("/health/", follow_redirects=False).status_code == 404
