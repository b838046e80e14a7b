"""Rekognition's error shape: HTTP 400 (throttling and server faults aside) and
``{"__type": <code>, "message": <text>}`` (AWS JSON protocol 1.1; botocore reads ``__type``).

Codes are Rekognition's own (API reference, "Common Errors" and each action's "Errors").
"""

from __future__ import annotations

from facesocial import errors


class RekognitionError(Exception):
    """An error answered in Rekognition's shape; ``status`` is the HTTP status (400 unless noted)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, str]:
        return {"__type": self.code, "message": self.message}


def unrecognized_client(
    message: str = "The security token included in the request is invalid.",
) -> RekognitionError:
    return RekognitionError("UnrecognizedClientException", message)


def invalid_signature(message: str) -> RekognitionError:
    return RekognitionError("InvalidSignatureException", message)


def invalid_parameter(message: str) -> RekognitionError:
    return RekognitionError("InvalidParameterException", message)


def not_found(message: str) -> RekognitionError:
    return RekognitionError("ResourceNotFoundException", message)


# Platform error codes -> Rekognition codes (facesocial/errors.py -> Rekognition's "Errors").
_CODES: dict[str, tuple[str, int]] = {
    "EMPTY_IMAGE": ("InvalidImageFormatException", 400),
    "NOT_AN_IMAGE": ("InvalidImageFormatException", 400),
    "UNSUPPORTED_MEDIA_TYPE": ("InvalidImageFormatException", 400),
    "IMAGE_TRUNCATED": ("InvalidImageFormatException", 400),
    "IMAGE_TOO_SMALL": ("InvalidImageFormatException", 400),
    "IMAGE_DIMENSIONS_UNSUPPORTED": ("InvalidImageFormatException", 400),
    "DECOMPRESSION_BOMB": ("ImageTooLargeException", 400),
    "IMAGE_TOO_LARGE": ("ImageTooLargeException", 400),
    "PAYLOAD_TOO_LARGE": ("ImageTooLargeException", 400),
    "NO_FACE_FOUND": ("InvalidParameterException", 400),
    "FACE_INDEX_OUT_OF_RANGE": ("InvalidParameterException", 400),
    "VALIDATION_FAILED": ("InvalidParameterException", 400),
    "GROUP_NOT_FOUND": ("ResourceNotFoundException", 400),
    "USER_NOT_FOUND": ("ResourceNotFoundException", 400),
    "RATE_LIMITED": ("ThrottlingException", 400),
    "SERVER_BUSY": ("ThrottlingException", 400),
    "API_KEY_QUOTA_EXCEEDED": ("LimitExceededException", 400),
    "MISSING_API_KEY": ("UnrecognizedClientException", 400),
    "INVALID_API_KEY": ("UnrecognizedClientException", 400),
    "API_KEY_EXPIRED": ("UnrecognizedClientException", 400),
    "ACCOUNT_DISABLED": ("AccessDeniedException", 400),
    "MODEL_UNAVAILABLE": ("ServiceUnavailableException", 503),
    "STORE_UNAVAILABLE": ("ServiceUnavailableException", 503),
}


def translate(exc: errors.FaceSocialError) -> RekognitionError:
    """The Rekognition error for a platform error; unknown 4xx codes become
    InvalidParameterException, 5xx ones InternalServerError (HTTP 500, as Rekognition)."""
    found = _CODES.get(exc.code)
    if found is not None:
        return RekognitionError(found[0], f"{exc.code}: {exc.message}", found[1])
    if exc.status >= 500:
        return RekognitionError("InternalServerError", f"{exc.code}: {exc.message}", 500)
    return invalid_parameter(f"{exc.code}: {exc.message}")
