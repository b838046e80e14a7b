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

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from facesocial.api.errors import envelope

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


def _catalogue() -> dict[str, Path]:
    """Every servable file under ``static/`` by its path relative to it (``js/app.js``): the
    files of a known type, none hidden. Built once; a request only looks its path up here, so no
    name a client sends ever reaches the file system (no traversal, NUL or over-long names)."""
    root = STATIC_DIR.resolve()
    files: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        hidden = any(part.startswith(".") for part in relative.parts)
        if path.is_file() and path.suffix in _MEDIA_TYPES and not hidden:
            files[relative.as_posix()] = path
    return files


_FILES = _catalogue()


def _file(relative: str) -> Response:
    """A file of the catalogue, or a 404 in the platform's error shape; both with the console's
    security headers (a 404 must not be the one answer of /console a browser would run freely)."""
    path = _FILES.get(relative)
    if path is None:
        missing = envelope("NOT_FOUND", "No such console asset", 404)
        missing.headers.update(SECURITY_HEADERS)
        return missing
    # no-cache: the browser revalidates (ETag) so an upgraded server never runs stale modules.
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
    return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=headers)


@router.api_route(PREFIX, methods=["GET", "HEAD"])
@router.api_route(PREFIX + "/", methods=["GET", "HEAD"])
def console_page() -> Response:
    """The console's single page; the fragment after ``#`` names the view."""
    return _file("index.html")


@router.api_route(PREFIX + "/assets/{relative:path}", methods=["GET", "HEAD"])
def console_asset(relative: str) -> Response:
    """A script, style sheet or image of the console."""
    return _file(relative)
