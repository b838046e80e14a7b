"""On-disk primitives of the local vector index: the checksummed journal and crash-safe writes.

Journal format v3 (``journal.bin``, written since partitions exist)::

    magic    8 bytes   b"FSJRNL\\x00\\x03"
    record*  length u32 LE | crc32 u32 LE | payload (length bytes)
    payload  op (b"U" | b"D") | count u32 LE | count x (id_length u16 LE | UTF-8 id)
             | count x (partition_length u16 LE | UTF-8 partition)   (upserts only)
             | count x dimension float32 LE                          (upserts only)

Format v2 (magic ``b"FSJRNL\\x00\\x02"``) is v3 without the partitions: its upserts are read
with partition ``""``. The index reads it and at once compacts it into a snapshot plus an empty
v3 journal, so v3 records are never appended behind a v2 magic.

One record holds one ``upsert``/``delete`` call, so a batch is applied whole or not at all.
The CRC-32 covers the length field and the payload. CRC-32 detects every burst error of up
to 32 bits and any other damage with probability 1 - 2^-32: enough to tell a torn or garbled
write (a crash, a bad sector) from a complete record. It is not a defence against someone who
can write the file on purpose; that person can rewrite the snapshot as well.

Format v1 (before the magic existed): records ``op | id_length u32 | id | vector`` with no
length or checksum; a torn final record was detected only by running off the end of the file.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import numpy.typing as npt

MAGIC = b"FSJRNL\x00\x03"
MAGIC_V2 = b"FSJRNL\x00\x02"
UPSERT, DELETE = b"U", b"D"
_HEADER = struct.Struct("<II")  # payload length, crc32
_COUNT = struct.Struct("<I")
_ID_LENGTH = struct.Struct("<H")
MAX_ID_BYTES = 0xFFFF

Problem = Literal["torn", "corrupt"]


@dataclass(frozen=True, slots=True)
class Record:
    """One journalled call: ``vectors`` is (len(ids), dimension) float32 for upserts, else None.

    ``partitions`` gives each upserted id's partition (None: ``""`` for all; deletes: None).
    """

    op: bytes
    ids: list[str]
    vectors: npt.NDArray[np.float32] | None
    partitions: list[str] | None = None

    def partition_list(self) -> list[str]:
        """Each id's partition (``""`` where none was given)."""
        return self.partitions if self.partitions is not None else [""] * len(self.ids)


@dataclass(frozen=True, slots=True)
class ReadResult:
    records: list[Record]
    good_end: int  # byte offset just past the last complete, checksummed record
    size: int  # bytes in the file
    problem: Problem | None  # what stopped the reader before ``size``


def encode(record: Record) -> bytes:
    """The v3 bytes of ``record``, header included. Raises ValueError for an id over 64 KiB."""
    parts = [record.op, _COUNT.pack(len(record.ids))]
    names = list(record.ids)
    if record.vectors is not None:
        names += record.partition_list()
    for name in names:
        encoded = name.encode()
        if len(encoded) > MAX_ID_BYTES:
            raise ValueError(f"id or partition of {len(encoded)} bytes exceeds {MAX_ID_BYTES}")
        parts += [_ID_LENGTH.pack(len(encoded)), encoded]
    if record.vectors is not None:
        parts.append(np.ascontiguousarray(record.vectors, dtype="<f4").tobytes())
    payload = b"".join(parts)
    length = _COUNT.pack(len(payload))
    return _HEADER.pack(len(payload), zlib.crc32(payload, zlib.crc32(length))) + payload


def _decode_payload(payload: bytes, dimension: int, version: int) -> Record | None:
    """The record in a checksummed payload, or None if its structure is inconsistent."""
    op = payload[:1]
    if op not in (UPSERT, DELETE) or len(payload) < 1 + _COUNT.size:
        return None
    (count,) = _COUNT.unpack_from(payload, 1)
    offset = 1 + _COUNT.size
    ids = []
    strings = 2 * count if op == UPSERT and version >= 3 else count
    try:
        for _ in range(strings):
            (length,) = _ID_LENGTH.unpack_from(payload, offset)
            offset += _ID_LENGTH.size
            if offset + length > len(payload):
                return None
            ids.append(payload[offset : offset + length].decode())
            offset += length
    except (struct.error, UnicodeDecodeError):
        return None
    vector_bytes = count * dimension * 4 if op == UPSERT else 0
    if len(payload) - offset != vector_bytes:
        return None
    vectors = None
    partitions = ids[count:] if strings > count else None
    if op == UPSERT:
        vectors = np.frombuffer(payload, dtype="<f4", offset=offset).astype(np.float32)
        vectors = vectors.reshape(count, dimension)
    return Record(op, ids[:count], vectors, partitions)


def read_framed(data: bytes, dimension: int, version: int) -> ReadResult:
    """Every record up to the first torn or corrupt one of a v2 or v3 journal (``version``, as
    :func:`journal_format` gave it; ``data`` starts with that version's magic)."""
    records: list[Record] = []
    offset = len(MAGIC) if len(data) >= len(MAGIC) else len(data)
    problem: Problem | None = None
    while offset < len(data):
        if offset + _HEADER.size > len(data):
            problem = "torn"
            break
        length, checksum = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        end = start + length
        if end > len(data):
            problem = "torn"  # or a garbled length; either way nothing after it can be trusted
            break
        payload = data[start:end]
        record = None
        if zlib.crc32(payload, zlib.crc32(data[offset : offset + 4])) == checksum:
            record = _decode_payload(payload, dimension, version)
        if record is None:
            # A bad final record is what a crash mid-write leaves (the length reached the disk,
            # not all of the payload); a bad record with more after it is damage.
            problem = "torn" if end == len(data) else "corrupt"
            break
        records.append(record)
        offset = end
    return ReadResult(records, offset, len(data), problem)


def read_v1(data: bytes, dimension: int) -> ReadResult:
    """The format before checksums: records up to the first one that does not parse."""
    records: list[Record] = []
    offset = 0
    problem: Problem | None = None
    while offset < len(data):
        op = data[offset : offset + 1]
        if op not in (UPSERT, DELETE) or offset + 5 > len(data):
            problem = "torn" if op in (UPSERT, DELETE) else "corrupt"
            break
        (id_length,) = struct.unpack_from("<I", data, offset + 1)
        start = offset + 5
        end = start + id_length + (dimension * 4 if op == UPSERT else 0)
        if end > len(data):
            problem = "torn"
            break
        try:
            face_id = data[start : start + id_length].decode()
        except UnicodeDecodeError:
            problem = "corrupt"
            break
        vectors = None
        if op == UPSERT:
            vectors = np.frombuffer(data[start + id_length : end], dtype="<f4").astype(np.float32)
            vectors = vectors.reshape(1, dimension)
        records.append(Record(op, [face_id], vectors))
        offset = end
    return ReadResult(records, offset, len(data), problem)


def journal_format(data: bytes) -> int | None:
    """3 or 2 for those formats, 1 for a v1 journal (or an empty file), None for neither.

    A magic cut short by a crash (a prefix of it) counts as an empty v3 journal.
    """
    if data.startswith(MAGIC) or (len(data) < len(MAGIC) and data and MAGIC.startswith(data)):
        return 3
    if data.startswith(MAGIC_V2):
        return 2
    if not data or data[:1] in (UPSERT, DELETE):
        return 1
    return None


# --- crash-safe file operations -------------------------------------------------------------------
def fsync_dir(folder: Path) -> None:
    """Make renames and new names in ``folder`` durable (POSIX: fsync the directory itself)."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomic(path: Path, write: bytes | Callable[[BinaryIO], object]) -> None:
    """Replace ``path`` with what ``write`` produces: all of it or none of it, even on power loss.

    ``write`` is the content, or a function writing it to a binary file. Writes ``<path>.tmp``,
    fsyncs it, renames it over ``path`` and fsyncs the folder. Raises OSError (the old file is
    then untouched; a stale ``.tmp`` may remain and is deleted on the next load).
    """
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as handle:
        if isinstance(write, bytes):
            handle.write(write)
        else:
            write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_dir(path.parent)


def append_at(path: Path, offset: int, data: bytes) -> None:
    """Write ``data`` at ``offset`` (the end of the last good record), cut anything after, fsync.

    Writing at the known good end, not in append mode, means the bytes of a failed earlier
    append (disk full mid-write) are overwritten instead of being left in front of this record.
    """
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(data)
        handle.truncate()
        handle.flush()
        os.fsync(handle.fileno())


def truncate(path: Path, size: int) -> None:
    with path.open("r+b") as handle:
        handle.truncate(size)
        handle.flush()
        os.fsync(handle.fileno())


def encode_all(records: Sequence[Record]) -> bytes:
    return b"".join(encode(record) for record in records)
