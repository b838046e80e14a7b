"""Streaming intake of a video upload: the request body goes to a file on disk, never into memory.

The API documents ``multipart/form-data`` with the video as the file part ``video`` (any other
parts are short text fields). A raw body (``Content-Type: video/*`` or
``application/octet-stream``) is accepted too, its fields then coming from the query string.

While the body streams in, the file part is hashed (SHA-256) and written to a new file in
``dest_dir`` in blocks of ~1 MiB (writes and hashing run in a worker thread, off the event loop).
At most one such block, one received chunk and the text fields are in memory at any moment.

Refusals (every one deletes the partial file before the error leaves this module):

* body or file over the limit: ``VIDEO_TOO_LARGE`` (413), from the Content-Length before anything
  is read, else the moment the file part passes ``limits.max_video_bytes``; a chunked body over the
  route's budget is refused by ``api/body_limit.py`` (413 ``PAYLOAD_TOO_LARGE``);
* no file part: ``VALIDATION_ERROR`` naming the field (as ``api/image_input.py`` reports a missing
  image); an empty file: ``EMPTY_VIDEO``;
* broken multipart (no boundary, bad framing, no closing boundary, a second file, more than
  ``intake.max_form_fields`` text fields, a text field over ``intake.field_allowance_bytes``,
  a field sent twice, text that is not UTF-8): ``VALIDATION_ERROR``;
* another Content-Type: ``UNSUPPORTED_MEDIA_TYPE`` (415);
* the client closing the connection early: ``CLIENT_DISCONNECTED``;
* the disk failing (full, read-only): ``SERVICE_UNAVAILABLE`` (503).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect, Request

from facesocial import errors
from facesocial.api.body_limit import allow_body
from facesocial.settings import IntakeSettings, VideoLimits

RAW_MEDIA_PREFIXES = ("video/", "application/octet-stream")
# Written to disk (and hashed) in blocks this large: few thread hops, little memory.
_FLUSH_BYTES = 1024 * 1024
# Headers of one multipart part (Content-Disposition, Content-Type, ...), in bytes. Browsers and
# curl send ~150; the cap keeps a hostile part from growing the header buffers.
_MAX_PART_HEADER_BYTES = 16 * 1024
# A neutral suffix: FFmpeg must recognise the upload by its content, never by a file name
# (some demuxers, e.g. image2 and raw formats, are chosen by extension).
_SPOOL_SUFFIX = ".upload"


@dataclass(frozen=True, slots=True)
class SpooledUpload:
    """A video upload on disk.

    ``path`` is a new file in the ``dest_dir`` given to :func:`spool_video_upload`; the caller owns
    it (delete it with :meth:`delete` when done). ``size`` is in bytes, ``sha256`` is lower-case
    hex of the file's bytes. ``filename`` and ``content_type`` are what the client declared for the
    file ("" when absent; never trusted for anything but display). ``fields`` holds the other text
    fields of the form (empty ones left out, as FastAPI's ``Form`` does).
    """

    path: Path
    size: int
    sha256: str
    filename: str
    content_type: str
    fields: dict[str, str] = field(default_factory=dict)

    def delete(self) -> None:
        """Remove the file (no error if it is already gone)."""
        self.path.unlink(missing_ok=True)


async def spool_video_upload(
    request: Request,
    dest_dir: Path,
    limits: VideoLimits,
    intake: IntakeSettings,
    file_field: str = "video",
) -> SpooledUpload:
    """Stream the request's video to a new file in ``dest_dir`` (created if missing).

    Declares the route's body budget (``limits.max_video_bytes + intake.field_allowance_bytes``)
    with :func:`facesocial.api.body_limit.allow_body` before reading. See the module docstring for
    the errors raised (all ``FaceSocialError`` subclasses, except the body-limit middleware's own
    413, which is passed on unchanged so that the middleware answers it).
    """
    budget = limits.max_video_bytes + intake.field_allowance_bytes
    allow_body(request.scope, budget)
    declared = request.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > budget:
        raise _too_large(limits.max_video_bytes)
    media, params = parse_options_header(request.headers.get("content-type", ""))
    media_type = media.decode("latin-1")
    if media_type == "multipart/form-data":
        try:
            reader: _BodyReader = _MultipartReader(dest_dir, limits, intake, file_field, params)
        except FormParserError as exc:  # e.g. a boundary over 256 characters
            raise errors.ValidationFailedError(f"The multipart Content-Type is invalid: {exc}") from exc
    elif media_type.startswith(RAW_MEDIA_PREFIXES):
        reader = _RawReader(dest_dir, limits, intake, file_field, request, media_type)
    elif media_type == "application/x-www-form-urlencoded":
        # Such a form cannot carry a file: the same answer as a multipart form without one.
        raise _missing_file(file_field)
    else:
        raise errors.UnsupportedMediaTypeError(
            f"Send the video as multipart/form-data (file part {file_field!r}) or as the raw body "
            f"(video/* or application/octet-stream); got {media_type or 'no Content-Type'}"
        )
    try:
        async for chunk in request.stream():
            reader.feed(chunk)
            await reader.spool.flush()
            if reader.has_all:
                break  # what may follow the closing boundary is never read
        reader.finish()
        await reader.spool.flush(force=True)
        return reader.spool.result(reader.file_name, reader.file_type, reader.fields, file_field)
    except ClientDisconnect as exc:
        reader.spool.discard()
        raise errors.ClientDisconnectedError() from exc
    except FormParserError as exc:
        reader.spool.discard()
        raise errors.ValidationFailedError(f"The multipart body is malformed: {exc}") from exc
    except OSError as exc:
        reader.spool.discard()
        raise errors.ServiceUnavailableError(
            "The server could not store the upload (disk full or not writable); retry later"
        ) from exc
    except BaseException:
        # Anything else (our own refusals, the body limit's 413, a cancelled task) leaves no file.
        reader.spool.discard()
        raise


class _Spool:
    """The file being written: created on first use, hashed and written in blocks off the loop."""

    def __init__(self, dest_dir: Path, max_bytes: int) -> None:
        self.dest_dir = dest_dir
        self.max_bytes = max_bytes
        self.path: Path | None = None
        self._file: BinaryIO | None = None
        self._hash = hashlib.sha256()
        self._pending = bytearray()
        self.size = 0

    def start(self) -> None:
        self.dest_dir.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix="video-", suffix=_SPOOL_SUFFIX, dir=self.dest_dir)
        self.path = Path(name)
        self._file = os.fdopen(handle, "wb")

    @property
    def started(self) -> bool:
        return self.path is not None

    def add(self, data: bytes) -> None:
        """Queue bytes of the file; refuses the moment the file passes the byte limit."""
        self.size += len(data)
        if self.size > self.max_bytes:
            raise _too_large(self.max_bytes)
        self._pending += data

    async def flush(self, force: bool = False) -> None:
        if self._file is None or not self._pending or (len(self._pending) < _FLUSH_BYTES and not force):
            return
        block, self._pending = self._pending, bytearray()
        # Not cancellable while the thread runs (anyio's default), so discard() never closes the
        # file under a write.
        await anyio.to_thread.run_sync(self._write, block)

    def _write(self, block: bytearray) -> None:
        assert self._file is not None
        self._hash.update(block)
        self._file.write(block)

    def result(
        self, filename: str, content_type: str, fields: dict[str, str], file_field: str
    ) -> SpooledUpload:
        if self.path is None or self._file is None:
            raise _missing_file(file_field)
        self._file.close()
        if self.size == 0:
            self.discard()
            raise errors.EmptyVideoError()
        return SpooledUpload(self.path, self.size, self._hash.hexdigest(), filename, content_type, fields)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class _BodyReader:
    """What both body kinds give: the spool, the file's declared name and type, the text fields."""

    def __init__(self, dest_dir: Path, limits: VideoLimits, intake: IntakeSettings, file_field: str) -> None:
        self.spool = _Spool(dest_dir, limits.max_video_bytes)
        self.intake = intake
        self.file_field = file_field
        self.file_name = ""
        self.file_type = ""
        self.fields: dict[str, str] = {}
        self._field_count = 0

    @property
    def has_all(self) -> bool:
        """Everything needed was read: the rest of the body (if any) may stay unread."""
        return False

    def feed(self, chunk: bytes) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError

    def add_field(self, name: str, value: str) -> None:
        """One text field, checked against the intake's limits (count, size, repetition)."""
        self._field_count += 1
        if self._field_count > self.intake.max_form_fields:
            raise errors.ValidationFailedError(
                f"The form has more than {self.intake.max_form_fields} text fields"
            )
        if len(value.encode()) > self.intake.field_allowance_bytes:
            raise _field_problem(name, f"longer than {self.intake.field_allowance_bytes} bytes")
        if name == self.file_field:
            raise _field_problem(name, "send the video as a file part, not as text")
        if name in self.fields:
            raise _field_problem(name, "sent twice; send it once")
        if value != "":  # an empty text part is an absent field (as FastAPI's Form)
            self.fields[name] = value


class _RawReader(_BodyReader):
    """The whole body is the video; fields come from the query string."""

    def __init__(
        self,
        dest_dir: Path,
        limits: VideoLimits,
        intake: IntakeSettings,
        file_field: str,
        request: Request,
        media_type: str,
    ) -> None:
        super().__init__(dest_dir, limits, intake, file_field)
        self.file_type = media_type
        _, disposition = parse_options_header(request.headers.get("content-disposition", ""))
        self.file_name = _text(disposition.get(b"filename", b""), "filename")
        for name, value in request.query_params.multi_items():
            self.add_field(name, value)
        self.spool.start()

    def feed(self, chunk: bytes) -> None:
        self.spool.add(chunk)

    def finish(self) -> None:
        pass


class _MultipartReader(_BodyReader):
    """``python_multipart``'s streaming parser, its callbacks routing each part."""

    def __init__(
        self,
        dest_dir: Path,
        limits: VideoLimits,
        intake: IntakeSettings,
        file_field: str,
        params: dict[bytes, bytes],
    ) -> None:
        super().__init__(dest_dir, limits, intake, file_field)
        boundary = params.get(b"boundary")
        if not boundary:
            raise errors.ValidationFailedError("The multipart Content-Type has no boundary")
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_end": self._on_end,
            },
        )
        self._ended = False
        self._epilogue = 0
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._header_bytes = 0
        self._headers: dict[bytes, bytes] = {}
        self._part_name = ""
        self._in_file = False
        self._text = bytearray()

    @property
    def has_all(self) -> bool:
        # After the closing boundary only an epilogue may come (RFC 2046 §5.1.1: to be ignored);
        # a short one (the usual CRLF) is read so the connection can be kept alive.
        return self._ended and self._epilogue > self.intake.field_allowance_bytes

    def feed(self, chunk: bytes) -> None:
        if self._ended:
            self._epilogue += len(chunk)
        else:
            self._parser.write(chunk)

    def finish(self) -> None:
        self._parser.finalize()
        if not self._ended:
            raise errors.ValidationFailedError("The multipart body ends before its closing boundary")

    # --- parser callbacks (synchronous; errors raised here leave parser.write) ---------------------

    def _on_part_begin(self) -> None:
        self._headers = {}
        self._header_bytes = 0
        self._in_file = False
        self._text = bytearray()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._header_value += data[start:end]

    def _count_header(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > _MAX_PART_HEADER_BYTES:
            raise errors.ValidationFailedError(
                f"A multipart part has more than {_MAX_PART_HEADER_BYTES} bytes of headers"
            )

    def _on_header_end(self) -> None:
        self._headers[bytes(self._header_name).lower()] = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if disposition != b"form-data" or b"name" not in options:
            raise errors.ValidationFailedError(
                'Each multipart part needs "Content-Disposition: form-data; name=..."'
            )
        self._part_name = _text(options[b"name"], "a part name")
        if self._part_name == self.file_field:
            if self.spool.started:
                raise _field_problem(self.file_field, "sent twice; send one video")
            self.file_name = _text(options.get(b"filename", b""), "filename")
            content_type, _ = parse_options_header(self._headers.get(b"content-type", b""))
            self.file_type = content_type.decode("latin-1")
            self._in_file = True
            self.spool.start()
        elif b"filename" in options:
            raise _field_problem(
                self._part_name, f"unexpected file part: only {self.file_field!r} carries a file"
            )

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.spool.add(data[start:end])
            return
        if len(self._text) + (end - start) > self.intake.field_allowance_bytes:
            raise _field_problem(self._part_name, f"longer than {self.intake.field_allowance_bytes} bytes")
        self._text += data[start:end]

    def _on_part_end(self) -> None:
        if not self._in_file:
            self.add_field(self._part_name, _text(bytes(self._text), self._part_name))

    def _on_end(self) -> None:
        self._ended = True


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.ValidationFailedError(f"{what} is not UTF-8 text") from exc


def _field_problem(name: str, problem: str) -> errors.FaceSocialError:
    return errors.ValidationFailedError(f"{name}: {problem}", fields=[name])


def _missing_file(file_field: str) -> errors.FaceSocialError:
    return errors.ValidationFailedError(
        f"{file_field}: Field required (send the video as the multipart file part {file_field!r})",
        fields=[file_field],
    )


def _too_large(limit: int) -> errors.FaceSocialError:
    return errors.VideoTooLargeError(
        f"The video exceeds the limit of {limit} bytes ({limit / (1024 * 1024):.0f} MiB)", limit_bytes=limit
    )
