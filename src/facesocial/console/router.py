"""``GET /console``: the console's page and its assets, from the package (no CDN at run time).

The page is plain HTML, CSS and ES modules (no build step): what is in ``static/`` is what the
browser runs. Every answer carries a Content-Security-Policy that allows only this origin's
scripts, styles and connections (images also from ``blob:``/``data:`` for the canvases and
thumbnails the page makes), so an injected string can never run as script; the page itself
builds the DOM with ``textContent``, never ``innerHTML``, for anything the API returned.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC_DIR = Path(str(resources.files("facesocial.console") / "static"))
PREFIX = "/console"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob:",
        "connect-src 'self' ws: wss:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The camera is asked for by the liveness and attention pages of this origin only.
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
}
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
}

router = APIRouter(include_in_schema=False)


def _file(relative: str) -> FileResponse:
    """A file under ``static/`` (404 for anything outside it, hidden, or of an unknown type)."""
    root = STATIC_DIR.resolve()
    path = (root / relative).resolve()
    if (
        not path.is_relative_to(root)
        or any(part.startswith(".") for part in path.relative_to(root).parts)
        or path.suffix not in _MEDIA_TYPES
        or not path.is_file()
    ):
        raise HTTPException(status_code=404, detail=f"no console asset {relative!r}")
    # no-cache: the browser revalidates (ETag) so an upgraded server never runs stale modules.
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
    return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=headers)


@router.get(PREFIX)
@router.get(PREFIX + "/")
def console_page() -> FileResponse:
    """The console's single page; the fragment after ``#`` names the view."""
    return _file("index.html")


@router.get(PREFIX + "/assets/{relative:path}")
def console_asset(relative: str) -> FileResponse:
    """A script, style sheet or image of the console."""
    return _file(relative)
