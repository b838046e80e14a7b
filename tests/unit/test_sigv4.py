"""SigV4 verification (facesocial.compat.rekognition.sigv4): AWS's published test vector, and
requests signed by botocore (the reference signer) accepted, tampered ones refused."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from facesocial.compat.rekognition import sigv4
from facesocial.compat.rekognition.errors import RekognitionError

botocore_auth = pytest.importorskip("botocore.auth", reason="botocore (boto3, dev extra) signs the requests")
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

KEY = "fs_TestKeyThatIsBothIdAndSecret_0123456789"
URL = "http://127.0.0.1:8000/rekognition"


def test_aws_get_vanilla_vector() -> None:
    """AWS SigV4 test suite, case get-vanilla (secret wJalr..., 20150830T123600Z, service 'service')."""
    auth = sigv4.Authorization(
        access_key="AKIDEXAMPLE",
        date="20150830",
        region="us-east-1",
        service="service",
        signed_headers=("host", "x-amz-date"),
        signature="",
    )
    headers = {"host": ["example.amazonaws.com"], "x-amz-date": ["20150830T123600Z"]}
    request = sigv4.canonical_request(
        "GET", "/", "", headers, auth.signed_headers, hashlib.sha256(b"").hexdigest()
    )
    assert request == (
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    assert (
        sigv4.signature(secret, auth, "20150830T123600Z", request)
        == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )


def _signed(
    body: bytes, *, secret: str = KEY, region: str = "eu-west-1", service: str = "rekognition"
) -> AWSRequest:
    request = AWSRequest(
        method="POST",
        url=URL,
        data=body,
        headers={
            "X-Amz-Target": "RekognitionService.ListCollections",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    botocore_auth.SigV4Auth(Credentials(KEY, secret), service, region).add_auth(request)
    return request


def _verify(
    request: AWSRequest, body: bytes, *, now: datetime | None = None, path: str = "/rekognition"
) -> None:
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        headers.setdefault(name.lower(), []).append(value)
    headers["host"] = ["127.0.0.1:8000"]  # what an HTTP client sends (botocore signs it too)
    auth = sigv4.parse_authorization(request.headers["Authorization"])
    sigv4.check_request(auth, "POST", path, "", headers, body, KEY, now=now)


def test_botocore_signed_request_verifies_in_any_region() -> None:
    body = json.dumps({"MaxResults": 5}).encode()
    request = _signed(body)
    auth = sigv4.parse_authorization(request.headers["Authorization"])
    assert (auth.access_key, auth.region, auth.service) == (KEY, "eu-west-1", "rekognition")
    _verify(request, body)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("secret", "InvalidSignatureException"),
        ("body", "InvalidSignatureException"),
        ("path", "InvalidSignatureException"),
        ("service", "IncompleteSignatureException"),
        ("clock", "InvalidSignatureException"),
    ],
)
def test_tampered_or_stale_requests_are_refused(change: str, code: str) -> None:
    body = b'{"MaxResults": 5}'
    request = _signed(
        body,
        secret="another secret" if change == "secret" else KEY,
        service="s3" if change == "service" else "rekognition",
    )
    with pytest.raises(RekognitionError) as caught:
        _verify(
            request,
            b'{"MaxResults": 6}' if change == "body" else body,
            path="/rekognition/other" if change == "path" else "/rekognition",
            now=datetime.now(UTC) + timedelta(minutes=16) if change == "clock" else None,
        )
    assert caught.value.code == code
    assert caught.value.status == 400


def test_clock_skew_inside_fifteen_minutes_is_accepted() -> None:
    body = b"{}"
    _verify(_signed(body), body, now=datetime.now(UTC) - timedelta(minutes=14))


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer abc",
        "AWS4-HMAC-SHA256 Credential=k/2026/us-east-1/rekognition/aws4_request, SignedHeaders=host, "
        "Signature=00",
    ],
)
def test_malformed_authorization_headers(header: str | None) -> None:
    with pytest.raises(RekognitionError) as caught:
        sigv4.parse_authorization(header)
    assert caught.value.code in {"MissingAuthenticationTokenException", "IncompleteSignatureException"}
