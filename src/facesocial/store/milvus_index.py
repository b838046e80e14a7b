"""The Milvus adapter of the VectorIndex port (the scaled profile), via pymilvus.

One Milvus collection per embedding model, schema ``face_id`` VARCHAR(64) primary key +
``embedding`` FLOAT_VECTOR(dim) + ``tenant`` VARCHAR(64) partition key, metric COSINE, so
Milvus' scores are cosine similarities (higher = closer), the same numbers the local index
returns.

Partitions (tenants): every row carries its partition in ``tenant`` ("" when the caller gives
none), declared ``is_partition_key=True`` (Milvus >= 2.2.9; milvus-lite 3.2 accepts it too).
Milvus hashes the key into the collection's 16 physical partitions and a search filtered by
``tenant == "<p>"`` reads only the one holding ``<p>``; the filter itself keeps other tenants
that hash there out. So a tenant-scoped search needs no list of the tenant's ids from SQL.
No scalar index on ``tenant``: an INVERTED one made no measurable difference in milvus-lite
(20k x 128-D, 5 and 50 tenants, ~9 ms either way), and the partition pruning already
narrows the scan. A filtered HNSW search uses ef=512 instead of 128: at ef=128 the top-10
recall inside one tenant fell to 0.95 (5 tenants) / 0.985 (50 tenants), at ef=512 it was 1.0
with no measurable latency change. Collections created before this field (old schema) report
``needs_partition_rebuild``; start-up rebuilds them from SQL with ``replace_collection``,
which always creates the new schema. Until then their rows count as partition "" (a search
or count of another partition finds nothing, as in the local index) and an upsert into
another partition raises ``VectorIndexError``; an *empty* old-schema collection is recreated
with the new schema by ``ensure_collection`` or by the first such upsert.

The URI chooses the deployment: ``/path/vectors.db`` starts milvus-lite in-process (pymilvus
does that for any URI ending in ``.db``); ``http(s)://host:19530`` talks to a standalone
server or a cluster's proxy. See docs/milvus.md.

Index: HNSW (M=16, efConstruction=200, ef=max(128, k)) by default rather than the design
document's IVF_FLAT (nlist=1024). On 20k random unit 128-D vectors in milvus-lite, IVF_FLAT
reached a top-10 recall of only 0.85 at nprobe=64 (IVF's cells help little on unstructured
data and must be retrained as the gallery grows), while HNSW reached 1.0 with no training
step; face galleries are small enough (1M x 512-D is ~2 GB) for HNSW's memory to be fine.
IVF_FLAT and FLAT (exact) can still be chosen with ``index_type``.

Consistency: every read is issued with the Strong consistency level (and collections are
created with it), so a face registered by one request is found by the next identify.

Aliases: the name the rest of the code uses (``face_embeddings_128d_dlib_resnet_v1``) is a
Milvus alias of a physical collection ``<name>__r<12 hex digits>``. ``replace_collection``
fills a new physical collection and moves the alias to it in one call, so searches never see
an empty or half-filled collection; collections created before aliases were used (a physical
collection under the plain name) keep working and become aliased at their first replacement.

Errors: connection-level failures (server unreachable, timeouts, gRPC UNAVAILABLE, rejected
credentials) raise ``VectorIndexUnavailableError`` (503); other Milvus errors and misuse raise
``VectorIndexError``. See docs/milvus.md.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import grpc  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
from pymilvus import DataType, MilvusClient  # type: ignore[import-untyped]
from pymilvus.exceptions import (  # type: ignore[import-untyped]
    ConnectError,
    ConnectionConfigException,
    ConnectionNotExistException,
    MilvusException,
    MilvusUnavailableException,
)

from facesocial.errors import FaceSocialError, VectorIndexUnavailableError
from facesocial.store.vector_index import Hit, IndexBatch, VectorIndexError, best_first

log = logging.getLogger(__name__)

IndexType = Literal["HNSW", "IVF_FLAT", "FLAT"]
_T = TypeVar("_T")

PRIMARY_FIELD = "face_id"
VECTOR_FIELD = "embedding"
PARTITION_FIELD = "tenant"
MAX_ID_LENGTH = 64
MAX_PARTITION_LENGTH = 64

# Milvus' own rule for collection names (letters, digits, underscores, not starting with a
# digit, at most 255 characters); milvus-lite does not enforce it, so we do.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
# Names callers use are aliases; the physical collection behind one adds a 15-character suffix.
_LOGICAL = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,239}")
_PHYSICAL = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]{0,239})__r[0-9a-f]{12}")
# Ids are UUID text in practice. This alphabet has no quote, backslash or whitespace, so an
# id can never break out of the string literal it is placed in inside a filter expression.
_ID = re.compile(rf"[A-Za-z0-9_.:\-]{{1,{MAX_ID_LENGTH}}}")
# Partitions (tenant ids as text) get the same alphabet, and may be empty ("no tenant").
_PARTITION_VALUE = re.compile(rf"[A-Za-z0-9_.:\-]{{0,{MAX_PARTITION_LENGTH}}}")

_MAX_DIMENSION = 32768  # Milvus' limit for FLOAT_VECTOR
_MAX_TOP_K = 16384  # Milvus rejects larger limits
_FILTER_CHUNK = 1000  # ids per `face_id in [...]` expression: keeps expressions ~70 kB
_QUERY_BATCH = 256  # query vectors per search RPC
_UPSERT_BYTES = 16 * 1024 * 1024  # vector payload per upsert RPC (gRPC's limit is 64 MB)
_ID_BATCH = 10_000  # primary keys per query_iterator page (Milvus caps a query at 16384 rows)

_BUILD_PARAMS: dict[str, dict[str, int]] = {
    "HNSW": {"M": 16, "efConstruction": 200},
    "IVF_FLAT": {"nlist": 1024},
    "FLAT": {},
}
_HNSW_EF = 128
_HNSW_EF_FILTERED = 512  # see the module docstring: filtered HNSW needs a wider beam for recall
_IVF_NPROBE = 64


@dataclass(frozen=True, slots=True)
class _Info:
    dimension: int
    index_type: str
    partitioned: bool  # has the ``tenant`` field (False: a collection from before partitions)


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _validate_ids(ids: Collection[str]) -> None:
    for face_id in ids:
        if not isinstance(face_id, str) or not _ID.fullmatch(face_id):
            raise VectorIndexError(
                f"invalid face id {face_id!r}: expected 1-{MAX_ID_LENGTH} characters of [A-Za-z0-9_.:-]"
            )


def _validate_partition(partition: str) -> None:
    if not isinstance(partition, str) or not _PARTITION_VALUE.fullmatch(partition):
        raise VectorIndexError(
            f"invalid partition {partition!r}:"
            f" expected 0-{MAX_PARTITION_LENGTH} characters of [A-Za-z0-9_.:-]"
        )


def _in_filter(ids: Sequence[str]) -> str:
    # The ids are validated (see _ID) before they get here; json.dumps quotes them as well,
    # so the expression stays a plain list of string literals either way.
    return f"{PRIMARY_FIELD} in [{', '.join(json.dumps(i) for i in ids)}]"


def _partition_filter(partition: str) -> str:
    # Validated like ids (no quote, backslash or whitespace), then quoted by json.dumps.
    return f"{PARTITION_FIELD} == {json.dumps(partition)}"


def _and(*expressions: str | None) -> str:
    """The conjunction of the non-empty expressions ("" when there are none)."""
    parts = [e for e in expressions if e]
    return parts[0] if len(parts) == 1 else " and ".join(f"({e})" for e in parts)


def _hit_id(hit: Any) -> str:
    # pymilvus puts the primary key under its field name (older releases: "id") and any
    # requested output fields under "entity"; accept each shape.
    entity = hit.get("entity") or {}
    for value in (entity.get(PRIMARY_FIELD), hit.get(PRIMARY_FIELD), hit.get("id")):
        if value is not None:
            return str(value)
    raise VectorIndexError(f"search hit without a {PRIMARY_FIELD}: {hit!r}")


def _unit(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms > 0, norms, 1.0)).astype(np.float32)


# gRPC statuses that mean "the server cannot be used now", not "this request is wrong".
# UNAUTHENTICATED/PERMISSION_DENIED are deployment faults: the caller can do nothing either.
_UNAVAILABLE_STATUSES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
    }
)
# Milvus' own codes (pkg/util/merr): 2 service unavailable (also pymilvus' CONNECT_FAILED),
# 3 memory limit, 4 request limit, 7 disk quota, 8 rate limited, 9 quota exceeded, 11 time tick
# delay, 12 resource insufficient. Code 1 is pymilvus' generic UNEXPECTED_ERROR: not used.
_UNAVAILABLE_CODES = frozenset({2, 3, 4, 7, 8, 9, 11, 12})
_COLLECTION_NOT_FOUND = 100  # merr.ErrCollectionNotFound, pymilvus ErrorCode.COLLECTION_NOT_FOUND
_CONNECTION_ERRORS = (
    ConnectError,
    MilvusUnavailableException,
    ConnectionNotExistException,
    ConnectionConfigException,
)
_UNAVAILABLE_MESSAGES = ("retry timeout", "server unavailable", "fail connecting", "connection refused")


def _is_unavailable(exc: BaseException) -> bool:
    """Whether a pymilvus/gRPC exception means the server is unreachable rather than the call wrong."""
    if isinstance(exc, grpc.FutureTimeoutError):
        return True
    if isinstance(exc, grpc.RpcError):
        return exc.code() in _UNAVAILABLE_STATUSES
    if isinstance(exc, _CONNECTION_ERRORS):
        return True
    if isinstance(exc, MilvusException):
        code = exc.code
        if isinstance(code, grpc.StatusCode):  # pymilvus' retry loop passes the gRPC status on
            return code in _UNAVAILABLE_STATUSES
        message = str(exc.message).lower()
        return code in _UNAVAILABLE_CODES or any(m in message for m in _UNAVAILABLE_MESSAGES)
    return False


class MilvusVectorIndex:
    """Cosine search in Milvus (server, cluster or milvus-lite), one collection per model."""

    def __init__(
        self,
        uri: str,
        *,
        token: str = "",
        db_name: str = "",
        index_type: IndexType = "HNSW",
        timeout: float | None = 30.0,
        exact_filter_limit: int = 4096,
        lite_flush_rows: int = 1000,
        index_wait: float = 600.0,
    ) -> None:
        """Connect to ``uri``.

        ``exact_filter_limit``: a search restricted to at most this many ``allowed_ids`` fetches
        those vectors and ranks them exactly (an ANN graph or IVF cells searched under a very
        selective filter can miss the allowed rows); larger restrictions use filtered ANN search.
        ``lite_flush_rows``: milvus-lite only; after this many upserted rows the collection is
        flushed, because milvus-lite searches unflushed rows by a slow scan (10-40 ms per 1000
        rows) and only indexes flushed segments, while a flush costs up to ~0.5 s. A server
        indexes growing segments itself and is never flushed here.
        ``index_wait``: seconds ``replace_collection`` waits for the new collection's index
        build before switching searches to it.
        ``timeout``: seconds per RPC, retries included; a server that does not answer within it
        raises VectorIndexUnavailableError, so this bounds how long a request can hang.
        """
        if index_type not in _BUILD_PARAMS:
            raise VectorIndexError(f"unsupported index type {index_type!r}")
        self.index_type: IndexType = index_type
        self.exact_filter_limit = exact_filter_limit
        self.lite_flush_rows = lite_flush_rows
        self.index_wait = index_wait
        self.is_lite = uri.endswith(".db")
        self._timeout = timeout
        if self.is_lite:
            # pymilvus refuses a .db path whose folder is missing; a fresh data folder is normal.
            uri = str(Path(uri).expanduser().resolve())
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        self.uri = uri
        with self._translate():
            self._client = MilvusClient(uri=uri, token=token, db_name=db_name, timeout=timeout)
        self._lock = threading.RLock()
        self._infos: dict[str, _Info] = {}
        self._unflushed: dict[str, int] = {}

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """Connection-level failures become VectorIndexUnavailableError, other Milvus errors
        VectorIndexError; our own errors pass through."""
        try:
            yield
        except (VectorIndexError, FaceSocialError):
            raise
        except (MilvusException, grpc.RpcError, grpc.FutureTimeoutError) as exc:
            if _is_unavailable(exc):
                log.error("Milvus at %s is unavailable: %s", self.uri, exc)
                raise VectorIndexUnavailableError("The vector index (Milvus) is not answering") from exc
            raise VectorIndexError(f"Milvus refused the request: {exc}") from exc

    # --- collection metadata ------------------------------------------------------------------
    def _describe(self, name: str) -> _Info | None:
        """The collection's dimension and index type, or None if it is not one of ours."""
        description = self._client.describe_collection(name, timeout=self._timeout)
        fields = {str(f["name"]): f for f in description.get("fields", [])}
        primary, vector = fields.get(PRIMARY_FIELD), fields.get(VECTOR_FIELD)
        if (
            primary is None
            or vector is None
            or not primary.get("is_primary")
            or primary.get("type") != DataType.VARCHAR
            or vector.get("type") != DataType.FLOAT_VECTOR
        ):
            return None
        dimension = int(vector["params"]["dim"])
        tenant = fields.get(PARTITION_FIELD)
        partitioned = tenant is not None and tenant.get("type") == DataType.VARCHAR
        indexes = self._client.list_indexes(name, field_name=VECTOR_FIELD, timeout=self._timeout)
        if not indexes:
            # A collection created without an index (by hand, or a crash between the two
            # calls) cannot be loaded; give it ours.
            self._client.create_index(name, self._index_params(), timeout=self._timeout)
            index_type: str = self.index_type
        else:
            described = self._client.describe_index(name, index_name=indexes[0], timeout=self._timeout)
            index_type = str(described.get("index_type", self.index_type))
        # Collections come back "released" after a restart (milvus-lite always, a server after
        # release); loading a loaded collection is a no-op.
        self._client.load_collection(name, timeout=self._timeout)
        return _Info(dimension, index_type, partitioned)

    def _info(self, name: str) -> _Info | None:
        """Cached metadata of an existing FaceSocial collection; None when absent."""
        with self._lock:
            info = self._infos.get(name)
            if info is not None:
                return info
            if not _NAME.fullmatch(name) or not self._client.has_collection(name, timeout=self._timeout):
                return None
            info = self._describe(name)
            if info is None:
                raise VectorIndexError(
                    f"collection {name} exists but lacks the {PRIMARY_FIELD}/{VECTOR_FIELD} schema"
                )
            self._infos[name] = info
            return info

    def _require(self, name: str) -> _Info:
        info = self._info(name)
        if info is None:
            raise VectorIndexError(f"no collection named {name}")
        return info

    def _read(self, name: str, call: Callable[[], _T]) -> _T:
        """Run a read; if the collection vanished under it, look ``name`` up again once.

        A rebuild moves the alias and drops the collection it pointed to: a read that resolved
        the name just before then finds no collection, and the retry reaches the new one (or, if
        the name is really gone, the usual empty answer).
        """
        try:
            with self._forget_on_error(name):
                return call()
        except VectorIndexError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, MilvusException) and cause.code == _COLLECTION_NOT_FOUND):
                raise
        with self._forget_on_error(name):
            return call()

    @contextmanager
    def _forget_on_error(self, name: str) -> Iterator[None]:
        with self._translate():
            try:
                yield
            except Exception:
                # The collection may have been dropped or re-aliased behind our back (e.g. by a
                # `facesocial index rebuild` in another process): describe it afresh next time.
                with self._lock:
                    self._infos.pop(name, None)
                raise

    def _index_params(self) -> Any:
        params = self._client.prepare_index_params()
        params.add_index(
            field_name=VECTOR_FIELD,
            index_name=VECTOR_FIELD,
            index_type=self.index_type,
            metric_type="COSINE",
            params=dict(_BUILD_PARAMS[self.index_type]),
        )
        return params

    # --- aliases and physical collections -------------------------------------------------------
    def _aliases(self) -> dict[str, str]:
        """Every alias in the database and the collection it points to."""
        listed = self._client.list_aliases(timeout=self._timeout)
        names = listed.get("aliases", []) if isinstance(listed, dict) else list(listed)
        return {
            str(alias): str(self._client.describe_alias(alias, timeout=self._timeout)["collection_name"])
            for alias in names
        }

    def _create_physical(self, name: str, dimension: int) -> str:
        """A new, empty, indexed physical collection for logical ``name``; returns its name."""
        physical = f"{name}__r{uuid.uuid4().hex[:12]}"
        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(PRIMARY_FIELD, DataType.VARCHAR, is_primary=True, max_length=MAX_ID_LENGTH)
        schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=dimension)
        schema.add_field(
            PARTITION_FIELD, DataType.VARCHAR, max_length=MAX_PARTITION_LENGTH, is_partition_key=True
        )
        self._client.create_collection(
            physical,
            schema=schema,
            index_params=self._index_params(),
            consistency_level="Strong",
            timeout=self._timeout,
        )
        return physical

    def _drop_physical(self, physical: str) -> None:
        """Best effort: a leftover is harmless (it is never listed) and dropped by the next rebuild."""
        try:
            self._client.drop_collection(physical, timeout=self._timeout)
        except Exception as exc:
            log.warning("Milvus: could not drop %s (%s); the next rebuild retries", physical, exc)

    def _drop_leftovers(self, name: str, aliases: dict[str, str]) -> None:
        """Physical collections of ``name`` that no alias points to: interrupted rebuilds."""
        targets = set(aliases.values())
        for physical in self._client.list_collections(timeout=self._timeout):
            match = _PHYSICAL.fullmatch(physical)
            if match and match["name"] == name and physical not in targets:
                log.warning("Milvus: dropping %s, left by an interrupted rebuild of %s", physical, name)
                self._drop_physical(physical)

    @staticmethod
    def _check_logical(name: str) -> None:
        if not _LOGICAL.fullmatch(name) or _PHYSICAL.fullmatch(name):
            raise VectorIndexError(
                f"invalid collection name {name!r}: 1-240 of [A-Za-z0-9_], not starting with a digit,"
                " not ending in __r + 12 hex digits"
            )

    # --- VectorIndex ----------------------------------------------------------------------------
    def ensure_collection(self, name: str, dimension: int) -> None:
        self._check_logical(name)
        if not 1 <= dimension <= _MAX_DIMENSION:
            raise VectorIndexError(f"invalid dimension {dimension}")
        with self._translate(), self._lock:
            existing = self._info(name)
            if existing is None:
                physical = self._create_physical(name, dimension)
                try:
                    self._client.create_alias(physical, name, timeout=self._timeout)
                except MilvusException:
                    # Another process may have created the name between our check and now.
                    self._drop_physical(physical)
                    if not self._client.has_collection(name, timeout=self._timeout):
                        raise
                existing = self._info(name)
                if existing is None:  # pragma: no cover - the alias exists, so it resolves
                    raise VectorIndexError(f"collection {name} vanished after creation")
            if existing.dimension != dimension:
                raise VectorIndexError(
                    f"collection {name} has dimension {existing.dimension}, not {dimension}"
                )
            if not existing.partitioned:
                self._upgrade_if_empty(name, existing)

    def upsert(
        self,
        name: str,
        ids: Sequence[str],
        vectors: npt.NDArray[np.float32],
        partitions: Sequence[str] | None = None,
    ) -> None:
        """Store ``vectors`` under ``ids``, each in ``partitions[i]`` ("" for all when None).

        A repeated upsert of an id replaces its vector and its partition (Milvus' upsert is a
        delete by primary key across partitions plus an insert). Raises VectorIndexError for
        an unknown collection, a bad id or partition, mismatched lengths, or a non-empty
        partition on a non-empty collection from before partitions (an empty one is recreated
        with the partitioned schema first; see ``needs_partition_rebuild``).
        """
        with self._forget_on_error(name):
            info = self._require(name)
            if not info.partitioned and partitions is not None and any(partitions):
                info = self._upgrade_if_empty(name, info)
            written = self._put(name, info, ids, vectors, partitions)
        if self.is_lite and written:
            with self._lock:
                pending = self._unflushed.get(name, 0) + written
                self._unflushed[name] = pending
            if pending >= self.lite_flush_rows:
                self.flush(name)

    def _put(
        self,
        collection: str,
        info: _Info,
        ids: Sequence[str],
        vectors: npt.NDArray[np.float32],
        partitions: Sequence[str] | None,
    ) -> int:
        """Upsert into ``collection`` (a name or a physical collection); returns rows written."""
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.size != len(ids) * info.dimension:
            raise VectorIndexError(f"{collection} expects {len(ids)} x {info.dimension}-D vectors")
        matrix = matrix.reshape(len(ids), info.dimension)
        _validate_ids(ids)
        tenants = [""] * len(ids) if partitions is None else list(partitions)
        if len(tenants) != len(ids):
            raise VectorIndexError(f"{len(ids)} ids but {len(tenants)} partitions")
        for tenant in set(tenants):
            _validate_partition(tenant)
        if not info.partitioned and any(tenants):
            raise VectorIndexError(self._old_schema_message(collection))
        # Duplicate keys within one upsert are rejected or resolved arbitrarily depending on
        # the Milvus version; keep the last one, as the local index does.
        last_row = {face_id: row for row, face_id in enumerate(ids)}
        rows: list[dict[str, Any]] = [
            {PRIMARY_FIELD: face_id, VECTOR_FIELD: matrix[row]} for face_id, row in last_row.items()
        ]
        if info.partitioned:
            for entity, row in zip(rows, last_row.values(), strict=True):
                entity[PARTITION_FIELD] = tenants[row]
        batch = max(1, _UPSERT_BYTES // (4 * info.dimension))
        for start in range(0, len(rows), batch):
            self._client.upsert(collection, rows[start : start + batch], timeout=self._timeout)
        return len(rows)

    def _upgrade_if_empty(self, name: str, info: _Info) -> _Info:
        """Give an empty collection from before partitions the partitioned schema.

        Nothing is lost (it is empty: new, or emptied by the start-up rebuild because SQL had no
        face for it), so it is replaced at once instead of refusing tenant rows until a rebuild.
        A non-empty one is returned unchanged: only a rebuild from SQL knows its rows' tenants.
        """
        with self._lock:
            if self._count_rows(name) > 0:
                return info
            log.info("Milvus: %s predates partitions and is empty; recreating it", name)
            self.replace_collection(name, info.dimension, [])
            return self._require(name)

    @staticmethod
    def _old_schema_message(name: str) -> str:
        return (
            f"collection {name} predates tenant partitions (no {PARTITION_FIELD} field);"
            " rebuild it from SQL (`facesocial index rebuild`, also run at start-up)"
        )

    @staticmethod
    def _scope(info: _Info, partition: str | None) -> str | None:
        """The filter expression for ``partition`` (None: no restriction).

        On a collection from before partitions every row counts as partition "" (see
        ``_outside``). Raises VectorIndexError for an invalid partition.
        """
        if partition is None:
            return None
        _validate_partition(partition)
        return _partition_filter(partition) if info.partitioned else None

    @staticmethod
    def _outside(info: _Info, partition: str | None) -> bool:
        """Whether ``partition`` holds no row of the collection by construction: a non-empty
        partition of a collection from before partitions (its rows all count as "")."""
        return partition is not None and partition != "" and not info.partitioned

    def _existing(
        self, name: str, ids: Sequence[str], fields: list[str], scope: str | None = None
    ) -> list[dict[str, Any]]:
        """The stored rows among ``ids`` within ``scope`` (chunked primary-key filters)."""
        found: list[dict[str, Any]] = []
        for chunk in _chunks(ids, _FILTER_CHUNK):
            found.extend(
                self._client.query(
                    name,
                    filter=_and(_in_filter(chunk), scope),
                    output_fields=fields,
                    consistency_level="Strong",
                    timeout=self._timeout,
                )
            )
        return found

    def delete(self, name: str, ids: Sequence[str]) -> int:
        with self._forget_on_error(name):
            return self._delete(name, ids)

    def _delete(self, name: str, ids: Sequence[str]) -> int:
        _validate_ids(ids)
        if not ids or self._info(name) is None:
            return 0
        # Milvus' delete count is the number of keys asked for, not of rows removed, so look
        # the keys up first. (Not atomic with a concurrent upsert of the same id; the SQL
        # row decides which face exists, and `facesocial index rebuild` reconciles.)
        present = sorted(
            {str(row[PRIMARY_FIELD]) for row in self._existing(name, sorted(set(ids)), [PRIMARY_FIELD])}
        )
        for chunk in _chunks(present, _FILTER_CHUNK):
            self._client.delete(name, filter=_in_filter(chunk), timeout=self._timeout)
        return len(present)

    def search(
        self,
        name: str,
        vectors: npt.NDArray[np.float32],
        k: int,
        allowed_ids: Collection[str] | None = None,
        partition: str | None = None,
    ) -> list[list[Hit]]:
        """Top-``k`` cosine hits per query row, best first.

        ``partition``: only rows of that partition (None: every row); ``allowed_ids`` narrows
        further. At most ``exact_filter_limit`` allowed ids are ranked exactly (their vectors
        fetched by a ``face_id in [...] and tenant == p`` query); a partition alone, or more
        ids, is a filtered ANN search. On a collection from before partitions every row counts
        as partition "". Raises VectorIndexError for a bad id or partition, or a wrong query
        dimension.
        """
        return self._read(name, lambda: self._search(name, vectors, k, allowed_ids, partition))

    def _search(
        self,
        name: str,
        vectors: npt.NDArray[np.float32],
        k: int,
        allowed_ids: Collection[str] | None,
        partition: str | None,
    ) -> list[list[Hit]]:
        queries = np.asarray(vectors, dtype=np.float32)
        queries = queries.reshape(-1, queries.shape[-1])
        empty: list[list[Hit]] = [[] for _ in range(len(queries))]
        info = self._info(name)
        if info is None or k <= 0 or len(queries) == 0:
            return empty
        if queries.shape[1] != info.dimension:
            raise VectorIndexError(f"{name} expects {info.dimension}-D vectors, got {queries.shape[1]}-D")
        scope = self._scope(info, partition)
        if self._outside(info, partition):
            return empty
        if allowed_ids is None:
            return self._ann(name, info, queries, k, scope)
        _validate_ids(allowed_ids)
        allowed = sorted(set(allowed_ids))
        if not allowed:
            return empty
        if len(allowed) <= self.exact_filter_limit:
            return self._exact(name, info, queries, k, allowed, scope)
        # A large restriction: filtered ANN search per chunk of ids, merged by score.
        merged: list[list[Hit]] = [[] for _ in range(len(queries))]
        for chunk in _chunks(allowed, _FILTER_CHUNK):
            for row, hits in enumerate(self._ann(name, info, queries, k, _and(_in_filter(chunk), scope))):
                merged[row].extend(hits)
        return [sorted(hits, key=lambda h: -h.score)[:k] for hits in merged]

    def _search_params(self, info: _Info, limit: int, filtered: bool) -> dict[str, Any]:
        if info.index_type.startswith("HNSW"):
            ef = _HNSW_EF_FILTERED if filtered else _HNSW_EF
            params: dict[str, int] = {"ef": max(ef, limit)}  # Milvus requires ef >= k
        elif info.index_type.startswith("IVF"):
            params = {"nprobe": _IVF_NPROBE}
        else:
            params = {}
        return {"metric_type": "COSINE", "params": params}

    def _ann(
        self, name: str, info: _Info, queries: npt.NDArray[np.float32], k: int, expression: str | None
    ) -> list[list[Hit]]:
        limit = min(k, _MAX_TOP_K)
        results: list[list[Hit]] = []
        for start in range(0, len(queries), _QUERY_BATCH):
            batch = queries[start : start + _QUERY_BATCH]
            response = self._client.search(
                name,
                data=[row for row in batch],
                filter=expression or "",
                limit=limit,
                anns_field=VECTOR_FIELD,
                output_fields=[PRIMARY_FIELD],
                search_params=self._search_params(info, limit, bool(expression)),
                consistency_level="Strong",
                timeout=self._timeout,
            )
            for hits in response:
                ranked = [Hit(_hit_id(hit), float(hit["distance"])) for hit in hits]
                # Milvus already returns best first; sorting again costs nothing and makes the
                # order a guarantee of this adapter rather than of the server version.
                ranked.sort(key=lambda h: -h.score)
                results.append(ranked)
        return results

    def _exact(
        self,
        name: str,
        info: _Info,
        queries: npt.NDArray[np.float32],
        k: int,
        allowed: Sequence[str],
        scope: str | None,
    ) -> list[list[Hit]]:
        rows = self._existing(name, allowed, [PRIMARY_FIELD, VECTOR_FIELD], scope)
        if not rows:
            return [[] for _ in range(len(queries))]
        ids = [str(row[PRIMARY_FIELD]) for row in rows]
        matrix = np.asarray([row[VECTOR_FIELD] for row in rows], dtype=np.float32).reshape(-1, info.dimension)
        # Milvus' COSINE normalises both sides; do the same so both search paths agree.
        scores = _unit(queries) @ _unit(matrix).T
        results: list[list[Hit]] = []
        for row_scores in scores:
            results.append([Hit(ids[i], float(row_scores[i])) for i in best_first(row_scores, k)])
        return results

    def count(self, name: str, partition: str | None = None) -> int:
        """Vectors in ``name`` (in ``partition`` when given); 0 for an unknown collection.

        On a collection from before partitions every row counts as partition "". Raises
        VectorIndexError for a bad partition.
        """
        return self._read(name, lambda: self._count(name, partition))

    def _count(self, name: str, partition: str | None) -> int:
        info = self._info(name)
        if info is None:
            if partition is not None:
                _validate_partition(partition)
            return 0
        scope = self._scope(info, partition)
        return 0 if self._outside(info, partition) else self._count_rows(name, scope)

    def needs_partition_rebuild(self, name: str) -> bool:
        """True when ``name`` exists without the ``tenant`` field and holds rows.

        Such a collection cannot answer tenant-scoped searches; start-up rebuilds it from SQL
        with ``replace_collection`` (which creates the partitioned schema). Absent and empty
        collections need no rebuild (``ensure_collection`` upgrades an empty one).
        """
        return self._read(name, lambda: self._needs_partition_rebuild(name))

    def _needs_partition_rebuild(self, name: str) -> bool:
        info = self._info(name)
        return info is not None and not info.partitioned and self._count_rows(name) > 0

    def _count_rows(self, collection: str, scope: str | None = None) -> int:
        # count(*) under Strong consistency sees unflushed writes and deletes; the collection
        # statistics' row_count does not.
        result = self._client.query(
            collection,
            filter=scope or "",
            output_fields=["count(*)"],
            consistency_level="Strong",
            timeout=self._timeout,
        )
        return int(result[0]["count(*)"])

    def ids(self, name: str) -> Iterator[str]:
        """Every primary key in ``name``, paged by query_iterator (10k per page, Strong reads).

        Errors surface while iterating, translated like every other call.
        """
        with self._forget_on_error(name):
            if self._info(name) is None:
                return iter(())
        return self._iterate_ids(name)

    def _iterate_ids(self, name: str) -> Iterator[str]:
        with self._forget_on_error(name):
            # query_iterator pages with a primary-key cursor, so any number of rows is listed
            # (a plain query is capped at 16384 rows per offset+limit window).
            pages = self._client.query_iterator(
                name,
                batch_size=_ID_BATCH,
                filter="",
                output_fields=[PRIMARY_FIELD],
                consistency_level="Strong",
                timeout=self._timeout,
            )
            try:
                while page := pages.next():
                    for row in page:
                        yield str(row[PRIMARY_FIELD])
            finally:
                pages.close()

    def drop(self, name: str) -> None:
        with self._translate(), self._lock:
            if self._info(name) is None:
                return
            physical = self._aliases().get(name)
            if physical is not None:
                # A Milvus server refuses to drop a collection that still has an alias.
                self._client.drop_alias(name, timeout=self._timeout)
                self._client.drop_collection(physical, timeout=self._timeout)
            else:
                self._client.drop_collection(name, timeout=self._timeout)
            self._infos.pop(name, None)
            self._unflushed.pop(name, None)

    def collections(self) -> list[str]:
        """FaceSocial's collections in the database (others sharing it are left out).

        Aliased collections are listed by alias; physical ``<name>__r…`` collections behind no
        alias (an interrupted rebuild) are not listed.
        """
        with self._translate():
            names = cast(list[str], self._client.list_collections(timeout=self._timeout))
            aliases = self._aliases()
            targets = set(aliases.values())
            candidates = [a for a, target in aliases.items() if target in names]
            candidates += [n for n in names if n not in targets and not _PHYSICAL.fullmatch(n)]
            ours = []
            for name in candidates:
                try:
                    info = self._info(name)
                except VectorIndexError:
                    continue  # someone else's collection with another schema
                if info is not None:
                    ours.append(name)
            return sorted(ours)

    def replace_collection(
        self,
        name: str,
        dimension: int,
        batches: Iterable[IndexBatch],
    ) -> int:
        """Fill a new physical collection from ``batches``, then point the alias ``name`` at it.

        ``batches`` yields (ids, vectors, partitions or None); the new collection always has the
        partitioned schema, so this is also how a collection from before partitions is upgraded.

        Searches keep using the old collection until ``alter_alias`` switches them over in one
        step; the old physical collection is dropped afterwards. A collection from before
        aliases is dropped just before the alias is created (searches see no collection for
        that moment). Writes made by other clients while this fills land in the old collection
        and are not carried over: reconcile with SQL afterwards. Returns the number of vectors.
        """
        self._check_logical(name)
        if not 1 <= dimension <= _MAX_DIMENSION:
            raise VectorIndexError(f"invalid dimension {dimension}")
        with self._translate():
            self._drop_leftovers(name, self._aliases())
            physical = self._create_physical(name, dimension)
            try:
                info = _Info(dimension, self.index_type, partitioned=True)
                for ids, vectors, partitions in batches:
                    self._put(physical, info, ids, vectors, partitions)
                # Seal and load before switching, so the first search on the new content is
                # served from an index rather than a scan of growing segments.
                self._client.flush(physical, timeout=self._timeout)
                self._wait_for_index(physical)
                self._client.load_collection(physical, timeout=self._timeout)
                stored = self._count_rows(physical)
                with self._lock:
                    current = self._aliases().get(name)
                    if current is not None:
                        self._client.alter_alias(physical, name, timeout=self._timeout)
                    else:
                        if self._client.has_collection(name, timeout=self._timeout):
                            self._require(name)  # never drop another application's collection
                            self._client.drop_collection(name, timeout=self._timeout)
                        self._client.create_alias(physical, name, timeout=self._timeout)
                    self._infos.pop(name, None)
                    self._unflushed.pop(name, None)
            except BaseException:
                self._drop_physical(physical)
                raise
            if current is not None:
                self._drop_physical(current)
            return stored

    def _wait_for_index(self, physical: str) -> None:
        """Wait (up to index_wait seconds) until a server has indexed every flushed row.

        A server builds indexes asynchronously after a flush; switching the alias earlier would
        send searches to a collection still scanned brute force. milvus-lite reports its
        index finished at once (it keeps compacting in the background; see docs/milvus.md).
        """
        deadline = time.monotonic() + self.index_wait
        while True:
            state = self._client.describe_index(physical, index_name=VECTOR_FIELD, timeout=self._timeout)
            pending = int(state.get("pending_index_rows", 0) or 0)
            if pending == 0 and int(state.get("indexed_rows", 0)) >= int(state.get("total_rows", 0)):
                return
            if time.monotonic() >= deadline:
                log.warning(
                    "Milvus: %s still has %d rows to index; switching to it anyway", physical, pending
                )
                return
            time.sleep(1.0)

    def ping(self) -> None:
        """One cheap RPC (list collections); raises VectorIndexUnavailableError if it fails."""
        with self._translate():
            self._client.list_collections(timeout=self._timeout)

    # --- beyond the port ------------------------------------------------------------------------
    def flush(self, name: str | None = None) -> None:
        """Seal buffered rows into indexed segments (one collection, or every one of ours)."""
        for collection in [name] if name is not None else self.collections():
            with self._forget_on_error(collection):
                if self._info(collection) is None:
                    continue
                self._client.flush(collection, timeout=self._timeout)
            with self._lock:
                self._unflushed.pop(collection, None)

    def close(self) -> None:
        try:
            self._client.close()
        except Exception as exc:  # closing a dead connection must not fail a shutdown
            log.warning("Milvus: closing the client failed: %s", exc)
