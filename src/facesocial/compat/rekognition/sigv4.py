"""AWS Signature Version 4 verification of a request signed for service ``rekognition``.

The algorithm is AWS's ("Create a signed AWS API request", General Reference): a canonical
request (method, URI-encoded path, sorted query, the signed headers in lower case with trimmed
values, the SHA-256 of the payload), a string to sign (``AWS4-HMAC-SHA256``, the ``X-Amz-Date``
timestamp, the credential scope, the canonical request's hash), and the HMAC-SHA256 chain
``"AWS4"+secret -> date -> region -> service -> "aws4_request"``. Pure functions: no I/O, no
botocore (the server never imports it; the unit tests sign with botocore and verify here).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

from facesocial.compat.rekognition.errors import RekognitionError, invalid_signature, unrecognized_client

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "rekognition"
# AWS refuses a request whose X-Amz-Date is more than 15 minutes from its clock.
MAX_SKEW = timedelta(minutes=15)
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass(frozen=True, slots=True)
class Authorization:
    """The parsed ``Authorization`` header: ``access_key`` is the platform API key here."""

    access_key: str
    date: str  # YYYYMMDD of the credential scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def parse_authorization(header: str | None) -> Authorization:
    """Parse ``AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request, SignedHeaders=a;b,
    Signature=hex``. Raises MissingAuthenticationTokenException / IncompleteSignatureException."""
    if not header:
        raise RekognitionError("MissingAuthenticationTokenException", "Missing Authentication Token")
    match = _AUTH.match(header.strip())
    if match is None:
        raise RekognitionError(
            "IncompleteSignatureException", "The Authorization header is not an AWS SigV4 header"
        )
    parts = match["credential"].split("/")
    # The access key itself (a platform key) holds no "/", so the scope is the last four parts.
    if len(parts) != 5 or parts[4] != "aws4_request" or not re.fullmatch(r"\d{8}", parts[1]):
        raise RekognitionError(
            "IncompleteSignatureException", "Credential must be KEY/YYYYMMDD/REGION/SERVICE/aws4_request"
        )
    signed = tuple(match["signed"].split(";"))
    return Authorization(parts[0], parts[1], parts[2], parts[3], signed, match["signature"])


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, Sequence[str]],
    signed_headers: Sequence[str],
    payload_hash: str,
) -> str:
    """The canonical request. ``headers``: lower-case name -> every value received; ``path``
    and ``query`` as received (still percent-encoded)."""
    canonical_path = quote(unquote(path) or "/", safe="/~")
    pairs = []
    for item in query.split("&") if query else []:
        key, _, value = item.partition("=")
        pairs.append((quote(unquote(key), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    canonical_query = "&".join(f"{k}={v}" for k, v in sorted(pairs))
    lines = []
    for name in signed_headers:
        values = headers.get(name, ())
        lines.append(f"{name}:{','.join(' '.join(v.split()) for v in values)}\n")
    return "\n".join(
        [
            method.upper(),
            canonical_path,
            canonical_query,
            "".join(lines),
            ";".join(signed_headers),
            payload_hash,
        ]
    )


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(f"AWS4{secret}".encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def signature(secret: str, auth: Authorization, amz_date: str, request: str) -> str:
    """Hex HMAC-SHA256 of the string to sign under ``secret``'s signing key for ``auth``'s scope."""
    to_sign = "\n".join([ALGORITHM, amz_date, auth.scope, hashlib.sha256(request.encode()).hexdigest()])
    return hmac.new(
        signing_key(secret, auth.date, auth.region, auth.service), to_sign.encode(), hashlib.sha256
    ).hexdigest()


def check_request(
    auth: Authorization,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, Sequence[str]],
    body: bytes,
    secret: str,
    now: datetime | None = None,
) -> None:
    """Verify ``auth``'s signature over the request with ``secret``; return or raise.

    Raises (Rekognition's codes, HTTP 400): IncompleteSignatureException (host or X-Amz-Date
    not signed, scope not ``rekognition``, dates disagreeing), InvalidSignatureException (clock
    skew over 15 minutes — AWS's "Signature expired" — a payload hash header that is not the
    body's, or a signature that differs; compared in constant time).
    """
    if auth.service != SERVICE:
        raise RekognitionError(
            "IncompleteSignatureException", f"Credential should be scoped to service '{SERVICE}'"
        )
    if "host" not in auth.signed_headers or "x-amz-date" not in auth.signed_headers:
        raise RekognitionError(
            "IncompleteSignatureException", "SignedHeaders must include host and x-amz-date"
        )
    if list(auth.signed_headers) != sorted(auth.signed_headers):
        raise RekognitionError("IncompleteSignatureException", "SignedHeaders must be sorted")
    amz_date = (headers.get("x-amz-date") or [""])[0]
    try:
        stamp = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise RekognitionError(
            "IncompleteSignatureException", "X-Amz-Date must be YYYYMMDDTHHMMSSZ"
        ) from None
    if amz_date[:8] != auth.date:
        raise RekognitionError(
            "IncompleteSignatureException", "The credential date is not the X-Amz-Date date"
        )
    now = now or datetime.now(UTC)
    if abs(now - stamp) > MAX_SKEW:
        raise invalid_signature(
            f"Signature expired: {amz_date} is outside 15 minutes of the server time {now:%Y%m%dT%H%M%SZ}."
        )
    payload = hashlib.sha256(body).hexdigest()
    declared = next(iter(headers.get("x-amz-content-sha256") or ()), None)
    if declared is not None and declared != payload:
        raise invalid_signature("The X-Amz-Content-SHA256 header is not the hash of the body.")
    request = canonical_request(method, path, query, headers, auth.signed_headers, payload)
    expected = signature(secret, auth, amz_date, request)
    if not hmac.compare_digest(expected, auth.signature):
        raise invalid_signature(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


__all__ = ["Authorization", "check_request", "parse_authorization", "unrecognized_client"]
