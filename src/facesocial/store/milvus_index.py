"""The Milvus adapter of the VectorIndex port (the scaled profile), via pymilvus.

One Milvus collection per embedding model, schema ``face_id`` VARCHAR(64) primary key +
``embedding`` FLOAT_VECTOR(dim), metric COSINE, so Milvus' scores are cosine similarities
(higher = closer), the same numbers the local index returns.

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
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt
from pymilvus import DataType, MilvusClient  # type: ignore[import-untyped]

from facesocial.store.vector_index import Hit, VectorIndexError

IndexType = Literal["HNSW", "IVF_FLAT", "FLAT"]

PRIMARY_FIELD = "face_id"
VECTOR_FIELD = "embedding"
MAX_ID_LENGTH = 64

# Milvus' own rule for collection names (letters, digits, underscores, not starting with a
# digit, at most 255 characters); milvus-lite does not enforce it, so we do.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
# Ids are UUID text in practice. This alphabet has no quote, backslash or whitespace, so an
# id can never break out of the string literal it is placed in inside a filter expression.
_ID = re.compile(rf"[A-Za-z0-9_.:\-]{{1,{MAX_ID_LENGTH}}}")

_MAX_DIMENSION = 32768  # Milvus' limit for FLOAT_VECTOR
_MAX_TOP_K = 16384  # Milvus rejects larger limits
_FILTER_CHUNK = 1000  # ids per `face_id in [...]` expression: keeps expressions ~70 kB
_QUERY_BATCH = 256  # query vectors per search RPC
_UPSERT_BYTES = 16 * 1024 * 1024  # vector payload per upsert RPC (gRPC's limit is 64 MB)

_BUILD_PARAMS: dict[str, dict[str, int]] = {
    "HNSW": {"M": 16, "efConstruction": 200},
    "IVF_FLAT": {"nlist": 1024},
    "FLAT": {},
}
_HNSW_EF = 128
_IVF_NPROBE = 64


@dataclass(frozen=True, slots=True)
class _Info:
    dimension: int
    index_type: str


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _validate_ids(ids: Collection[str]) -> None:
    for face_id in ids:
        if not isinstance(face_id, str) or not _ID.fullmatch(face_id):
            raise VectorIndexError(
                f"invalid face id {face_id!r}: expected 1-{MAX_ID_LENGTH} characters of [A-Za-z0-9_.:-]"
            )


def _in_filter(ids: Sequence[str]) -> str:
    # The ids are validated (see _ID) before they get here; json.dumps quotes them as well,
    # so the expression stays a plain list of string literals either way.
    return f"{PRIMARY_FIELD} in [{', '.join(json.dumps(i) for i in ids)}]"


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
    ) -> None:
        """Connect to ``uri``.

        ``exact_filter_limit``: a search restricted to at most this many ``allowed_ids`` fetches
        those vectors and ranks them exactly (an ANN graph or IVF cells searched under a very
        selective filter can miss the allowed rows); larger restrictions use filtered ANN search.
        ``lite_flush_rows``: milvus-lite only; after this many upserted rows the collection is
        flushed, because milvus-lite searches unflushed rows by a slow scan (10-40 ms per 1000
        rows) and only indexes flushed segments, while a flush costs up to ~0.5 s. A server
        indexes growing segments itself and is never flushed here.
        """
        if index_type not in _BUILD_PARAMS:
            raise VectorIndexError(f"unsupported index type {index_type!r}")
        self.index_type: IndexType = index_type
        self.exact_filter_limit = exact_filter_limit
        self.lite_flush_rows = lite_flush_rows
        self.is_lite = uri.endswith(".db")
        self._timeout = timeout
        if self.is_lite:
            # pymilvus refuses a .db path whose folder is missing; a fresh data folder is normal.
            uri = str(Path(uri).expanduser().resolve())
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        self.uri = uri
        self._client = MilvusClient(uri=uri, token=token, db_name=db_name, timeout=timeout)
        self._lock = threading.RLock()
        self._infos: dict[str, _Info] = {}
        self._unflushed: dict[str, int] = {}

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
        return _Info(dimension, index_type)

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

    @contextmanager
    def _forget_on_error(self, name: str) -> Iterator[None]:
        try:
            yield
        except Exception:
            # The collection may have been dropped or recreated behind our back (e.g. by a
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

    # --- VectorIndex ----------------------------------------------------------------------------
    def ensure_collection(self, name: str, dimension: int) -> None:
        if not _NAME.fullmatch(name):
            raise VectorIndexError(f"invalid collection name {name!r}")
        if not 1 <= dimension <= _MAX_DIMENSION:
            raise VectorIndexError(f"invalid dimension {dimension}")
        with self._lock:
            existing = self._info(name)
            if existing is None:
                schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
                schema.add_field(PRIMARY_FIELD, DataType.VARCHAR, is_primary=True, max_length=MAX_ID_LENGTH)
                schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=dimension)
                try:
                    self._client.create_collection(
                        name,
                        schema=schema,
                        index_params=self._index_params(),
                        consistency_level="Strong",
                        timeout=self._timeout,
                    )
                except Exception:
                    # Another process may have created it between our check and create.
                    if not self._client.has_collection(name, timeout=self._timeout):
                        raise
                existing = self._info(name)
                if existing is None:  # pragma: no cover - create succeeded, so it exists
                    raise VectorIndexError(f"collection {name} vanished after creation")
            if existing.dimension != dimension:
                raise VectorIndexError(
                    f"collection {name} has dimension {existing.dimension}, not {dimension}"
                )

    def upsert(self, name: str, ids: Sequence[str], vectors: npt.NDArray[np.float32]) -> None:
        with self._forget_on_error(name):
            self._upsert(name, ids, vectors)

    def _upsert(self, name: str, ids: Sequence[str], vectors: npt.NDArray[np.float32]) -> None:
        info = self._require(name)
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.size != len(ids) * info.dimension:
            raise VectorIndexError(f"{name} expects {len(ids)} x {info.dimension}-D vectors")
        matrix = matrix.reshape(len(ids), info.dimension)
        _validate_ids(ids)
        # Duplicate keys within one upsert are rejected or resolved arbitrarily depending on
        # the Milvus version; keep the last one, as the local index does.
        last_row = {face_id: row for row, face_id in enumerate(ids)}
        rows = [{PRIMARY_FIELD: face_id, VECTOR_FIELD: matrix[row]} for face_id, row in last_row.items()]
        batch = max(1, _UPSERT_BYTES // (4 * info.dimension))
        for start in range(0, len(rows), batch):
            self._client.upsert(name, rows[start : start + batch], timeout=self._timeout)
        if self.is_lite and rows:
            with self._lock:
                pending = self._unflushed.get(name, 0) + len(rows)
                self._unflushed[name] = pending
            if pending >= self.lite_flush_rows:
                self.flush(name)

    def _existing(self, name: str, ids: Sequence[str], fields: list[str]) -> list[dict[str, Any]]:
        """The stored rows among ``ids`` (chunked primary-key filters)."""
        found: list[dict[str, Any]] = []
        for chunk in _chunks(ids, _FILTER_CHUNK):
            found.extend(
                self._client.query(
                    name,
                    filter=_in_filter(chunk),
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
    ) -> list[list[Hit]]:
        with self._forget_on_error(name):
            return self._search(name, vectors, k, allowed_ids)

    def _search(
        self,
        name: str,
        vectors: npt.NDArray[np.float32],
        k: int,
        allowed_ids: Collection[str] | None,
    ) -> list[list[Hit]]:
        queries = np.asarray(vectors, dtype=np.float32)
        queries = queries.reshape(-1, queries.shape[-1])
        empty: list[list[Hit]] = [[] for _ in range(len(queries))]
        info = self._info(name)
        if info is None or k <= 0 or len(queries) == 0:
            return empty
        if queries.shape[1] != info.dimension:
            raise VectorIndexError(f"{name} expects {info.dimension}-D vectors, got {queries.shape[1]}-D")
        if allowed_ids is None:
            return self._ann(name, info, queries, k, None)
        _validate_ids(allowed_ids)
        allowed = sorted(set(allowed_ids))
        if not allowed:
            return empty
        if len(allowed) <= self.exact_filter_limit:
            return self._exact(name, info, queries, k, allowed)
        # A large restriction: filtered ANN search per chunk of ids, merged by score.
        merged: list[list[Hit]] = [[] for _ in range(len(queries))]
        for chunk in _chunks(allowed, _FILTER_CHUNK):
            for row, hits in enumerate(self._ann(name, info, queries, k, _in_filter(chunk))):
                merged[row].extend(hits)
        return [sorted(hits, key=lambda h: -h.score)[:k] for hits in merged]

    def _search_params(self, info: _Info, limit: int) -> dict[str, Any]:
        if info.index_type.startswith("HNSW"):
            params: dict[str, int] = {"ef": max(_HNSW_EF, limit)}  # Milvus requires ef >= k
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
                search_params=self._search_params(info, limit),
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
        self, name: str, info: _Info, queries: npt.NDArray[np.float32], k: int, allowed: Sequence[str]
    ) -> list[list[Hit]]:
        rows = self._existing(name, allowed, [PRIMARY_FIELD, VECTOR_FIELD])
        if not rows:
            return [[] for _ in range(len(queries))]
        ids = [str(row[PRIMARY_FIELD]) for row in rows]
        matrix = np.asarray([row[VECTOR_FIELD] for row in rows], dtype=np.float32).reshape(-1, info.dimension)
        # Milvus' COSINE normalises both sides; do the same so both search paths agree.
        scores = _unit(queries) @ _unit(matrix).T
        top = min(k, len(ids))
        results: list[list[Hit]] = []
        for row_scores in scores:
            best = np.argpartition(-row_scores, top - 1)[:top]
            best = best[np.argsort(-row_scores[best], kind="stable")]
            results.append([Hit(ids[i], float(row_scores[i])) for i in best])
        return results

    def count(self, name: str) -> int:
        with self._forget_on_error(name):
            return self._count(name)

    def _count(self, name: str) -> int:
        if self._info(name) is None:
            return 0
        # count(*) under Strong consistency sees unflushed writes and deletes; the collection
        # statistics' row_count does not.
        result = self._client.query(
            name, filter="", output_fields=["count(*)"], consistency_level="Strong", timeout=self._timeout
        )
        return int(result[0]["count(*)"])

    def drop(self, name: str) -> None:
        with self._lock:
            if self._info(name) is None:
                return
            self._client.drop_collection(name, timeout=self._timeout)
            self._infos.pop(name, None)
            self._unflushed.pop(name, None)

    def collections(self) -> list[str]:
        """FaceSocial's collections in the database (others sharing it are left out)."""
        names = cast(list[str], self._client.list_collections(timeout=self._timeout))
        ours = []
        for name in names:
            try:
                info = self._info(name)
            except VectorIndexError:
                continue  # someone else's collection with another schema
            if info is not None:
                ours.append(name)
        return sorted(ours)

    # --- beyond the port ------------------------------------------------------------------------
    def flush(self, name: str | None = None) -> None:
        """Seal buffered rows into indexed segments (one collection, or every one of ours)."""
        for collection in [name] if name is not None else self.collections():
            if self._info(collection) is None:
                continue
            self._client.flush(collection, timeout=self._timeout)
            with self._lock:
                self._unflushed.pop(collection, None)

    def close(self) -> None:
        self._client.close()
