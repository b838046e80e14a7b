"""The embedded vector index on real files: search, persistence, crash recovery, ownership.

Behaviour shared with Milvus (ids, replace_collection, reopen) is in test_vector_index_contract.py;
this file covers what only a local folder has: the journal format, quarantine, the flock, and
crashes simulated by killing real processes at chosen points.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import hnswlib  # type: ignore[import-untyped]
import numpy as np
import pytest

from facesocial.errors import FaceSocialError, IndexInUseError, VectorIndexUnavailableError
from facesocial.settings import VectorIndexSettings
from facesocial.store import local_index as local_index_module
from facesocial.store.local_index import LocalVectorIndex
from facesocial.store.local_journal import MAGIC, MAGIC_V2
from facesocial.store.vector_index import IndexBatch, VectorIndexError
from facesocial.vision.geometry import l2_normalise


def random_unit(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    return l2_normalise(np.random.default_rng(seed).normal(size=(n, dim))).astype(np.float32)


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[list[LocalVectorIndex]]:
    """Indexes a test opens; closed at the end so a failing test does not leak its lock."""
    indexes: list[LocalVectorIndex] = []
    yield indexes
    for index in indexes:
        index.close()


def reopen(root: Path, opened: list[LocalVectorIndex]) -> LocalVectorIndex:
    for index in opened:
        index.close()
    index = LocalVectorIndex(root)
    opened.append(index)
    return index


def content(index: LocalVectorIndex, name: str) -> dict[str, np.ndarray]:
    """id -> stored vector, read back through search (each vector is its own nearest row)."""
    ids = sorted(index.ids(name))
    collection = index._collections[name]
    return {face_id: collection.matrix[collection.rows[face_id]].copy() for face_id in ids}


def same_content(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def run_child(script: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args], capture_output=True, text=True, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"child failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


# --- search and persistence ------------------------------------------------------------------------
def test_search_finds_exact_neighbour_first(tmp_path: Path, opened: list[LocalVectorIndex]) -> None:
    index = reopen(tmp_path, opened)
    index.ensure_collection("c", 8)
    vectors = random_unit(50)
    ids = [f"id{i}" for i in range(50)]
    index.upsert("c", ids, vectors)
    hits = index.search("c", vectors[[7, 31]], k=3)
    assert [h[0].id for h in hits] == ["id7", "id31"]
    assert hits[0][0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0][0].score >= hits[0][1].score >= hits[0][2].score
    # Brute-force agreement on the second neighbour.
    expected = ids[int(np.argsort(-(vectors @ vectors[7]))[1])]
    assert hits[0][1].id == expected


def test_persistence_deletes_and_updates_survive_reload(
    tmp_path: Path, opened: list[LocalVectorIndex]
) -> None:
    index = reopen(tmp_path, opened)
    index.ensure_collection("c", 8)
    vectors = random_unit(20)
    index.upsert("c", [f"id{i}" for i in range(20)], vectors)
    assert index.delete("c", ["id3", "id19", "missing"]) == 2
    index.upsert("c", ["id5"], vectors[[6]])  # overwrite id5 with id6's vector
    reloaded = reopen(tmp_path, opened)
    assert reloaded.count("c") == 18 and reloaded.damaged == []
    hits = reloaded.search("c", vectors[[6]], k=2)[0]
    assert {h.id for h in hits} == {"id5", "id6"}
    assert all(h.id not in {"id3", "id19"} for h in reloaded.search("c", vectors, k=20)[0])


def test_compaction_keeps_content(tmp_path: Path, opened: list[LocalVectorIndex]) -> None:
    index = reopen(tmp_path, opened)
    index.ensure_collection("c", 8)
    vectors = random_unit(1500)
    for start in range(0, 1500, 100):  # many small appends trigger a snapshot
        index.upsert("c", [f"id{i}" for i in range(start, start + 100)], vectors[start : start + 100])
    assert (tmp_path / "c" / "snapshot.npz").exists()
    assert (tmp_path / "c" / "journal.bin").stat().st_size < 1500 * 40  # folded into the snapshot
    reloaded = reopen(tmp_path, opened)
    assert reloaded.count("c") == 1500
    assert reloaded.search("c", vectors[[1234]], k=1)[0][0].id == "id1234"


def test_collections_are_separate_and_typed(tmp_path: Path, opened: list[LocalVectorIndex]) -> None:
    index = reopen(tmp_path, opened)
    index.ensure_collection("face_embeddings_8d_a", 8)
    index.ensure_collection("face_embeddings_4d_b", 4)
    with pytest.raises(VectorIndexError):
        index.ensure_collection("face_embeddings_8d_a", 16)
    with pytest.raises(VectorIndexError):
        index.upsert("face_embeddings_4d_b", ["x"], random_unit(1, 8))
    with pytest.raises(VectorIndexError):
        index.ensure_collection("../escape", 8)
    assert index.collections() == ["face_embeddings_4d_b", "face_embeddings_8d_a"]
    index.drop("face_embeddings_4d_b")
    assert reopen(tmp_path, opened).collections() == ["face_embeddings_8d_a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "face_embeddings_8d_a"]


# --- journal recovery -------------------------------------------------------------------------------
def _three_records(root: Path, opened: list[LocalVectorIndex]) -> tuple[dict[str, np.ndarray], int, int]:
    """A journal of three records; returns the content before the last one and its byte span."""
    index = reopen(root, opened)
    index.ensure_collection("c", 8)
    vectors = random_unit(6)
    index.upsert("c", ["a", "bb", "ccc"], vectors[:3])
    index.delete("c", ["bb"])
    before = content(index, "c")
    start = (root / "c" / "journal.bin").stat().st_size
    index.upsert("c", ["dddd", "a"], vectors[3:5])  # the last record: a new id and an overwrite
    end = (root / "c" / "journal.bin").stat().st_size
    index.close()
    return before, start, end


def test_torn_tail_at_every_offset_keeps_exactly_the_good_records(
    tmp_path: Path, opened: list[LocalVectorIndex]
) -> None:
    before, start, end = _three_records(tmp_path / "orig", opened)
    journal = (tmp_path / "orig" / "c" / "journal.bin").read_bytes()
    meta = (tmp_path / "orig" / "c" / "meta.json").read_bytes()
    extra = random_unit(1, seed=5)
    for cut in range(start, end):  # every way the last append can be torn, including not at all
        root = tmp_path / f"cut{cut}"
        (root / "c").mkdir(parents=True)
        (root / "c" / "meta.json").write_bytes(meta)
        (root / "c" / "journal.bin").write_bytes(journal[:cut])
        index = reopen(root, opened)
        assert same_content(content(index, "c"), before), cut
        assert (root / "c" / "journal.bin").stat().st_size == start, cut  # truncated at the good end
        if cut > start:
            assert index.damaged == ["c"]
            assert index.load_issues[0].bytes_dropped == cut - start
        else:
            assert index.damaged == []
        # An append after recovery lands right after the last good record and survives reopening.
        index.upsert("c", ["eeeee"], extra)
        again = reopen(root, opened)
        assert again.damaged == []
        assert same_content(content(again, "c"), {**before, "eeeee": extra[0]}), cut


def test_flipped_byte_drops_that_record_and_everything_after(
    tmp_path: Path, opened: list[LocalVectorIndex], caplog: pytest.LogCaptureFixture
) -> None:
    index = reopen(tmp_path, opened)
    index.ensure_collection("c", 8)
    vectors = random_unit(5)
    offsets = []
    for i in range(5):
        offsets.append((tmp_path / "c" / "journal.bin").stat().st_size)
        index.upsert("c", [f"id{i}"], vectors[[i]])
    index.close()
    journal = tmp_path / "c" / "journal.bin"
    data = bytearray(journal.read_bytes())
    size = len(data)
    data[offsets[2] + 20] ^= 0x01  # one bit inside the third record's payload
    journal.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="facesocial.store.local_index"):
        reloaded = reopen(tmp_path, opened)
    assert sorted(reloaded.ids("c")) == ["id0", "id1"]
    assert reloaded.damaged == ["c"]
    (issue,) = reloaded.load_issues
    assert issue.bytes_dropped == size - offsets[2] and "corrupt" in issue.problem
    assert f"dropped the last {size - offsets[2]} bytes" in caplog.text
    assert journal.stat().st_size == offsets[2]


def _v1_record(op: bytes, face_id: str, vector: np.ndarray | None) -> bytes:
    encoded = face_id.encode()
    data = op + struct.pack("<I", len(encoded)) + encoded
    return data + (vector.astype("<f4").tobytes() if vector is not None else b"")


def test_v1_journal_and_snapshot_still_load_and_are_converted(
    tmp_path: Path, opened: list[LocalVectorIndex]
) -> None:
    # The layout and formats written before journal v2, built by hand as the old code did.
    vectors = random_unit(6)
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "meta.json").write_text(json.dumps({"dimension": 8}))
    np.savez(folder / "snapshot.npz", ids=np.array(["s0", "s1"], dtype=str), matrix=vectors[:2])
    journal = (
        _v1_record(b"U", "j2", vectors[2])
        + _v1_record(b"D", "s0", None)
        + _v1_record(b"U", "s1", vectors[3])  # overwrites a snapshot row
        + _v1_record(b"U", "j4", vectors[4])[:-7]  # torn by a crash
    )
    (folder / "journal.bin").write_bytes(journal)
    index = reopen(tmp_path, opened)
    expected = {"j2": vectors[2], "s1": vectors[3]}
    assert same_content(content(index, "c"), expected)
    assert index.damaged == ["c"]  # the torn v1 record was dropped, and said so
    assert (folder / "journal.bin").read_bytes() == MAGIC  # converted: snapshot + empty v2 journal
    index.upsert("c", ["new"], vectors[[5]])
    again = reopen(tmp_path, opened)
    assert again.damaged == []
    assert same_content(content(again, "c"), {**expected, "new": vectors[5]})


@pytest.mark.parametrize(
    ("damage", "restarted_empty"),
    [
        ("garbage snapshot", True),
        ("truncated snapshot", True),
        ("snapshot with the wrong shape", True),
        ("journal with an unknown header", True),
        ("unreadable meta.json", False),  # the dimension is unknown: the collection is absent
    ],
)
def test_damaged_files_quarantine_the_collection_without_raising(
    tmp_path: Path, opened: list[LocalVectorIndex], damage: str, restarted_empty: bool
) -> None:
    index = reopen(tmp_path, opened)
    vectors = random_unit(30)
    for name in ("bad", "good"):
        index.ensure_collection(name, 8)
        index.upsert(name, [f"id{i}" for i in range(30)], vectors)
    index.compact()
    index.upsert("bad", ["late"], vectors[[0]])
    index.close()
    folder = tmp_path / "bad"
    snapshot = folder / "snapshot.npz"
    if damage == "garbage snapshot":
        snapshot.write_bytes(os.urandom(snapshot.stat().st_size))
    elif damage == "truncated snapshot":
        snapshot.write_bytes(snapshot.read_bytes()[:-100])
    elif damage == "snapshot with the wrong shape":
        np.savez(snapshot, ids=np.array(["x", "y"], dtype=str), matrix=vectors[:3])
    elif damage == "journal with an unknown header":
        (folder / "journal.bin").write_bytes(b"\x00" * 64)
    else:
        (folder / "meta.json").write_text("{not json")

    reloaded = reopen(tmp_path, opened)  # must not raise
    assert reloaded.damaged == ["bad"]
    (issue,) = reloaded.load_issues
    assert issue.quarantined_as is not None and issue.quarantined_as.startswith("bad.corrupt-")
    assert (tmp_path / issue.quarantined_as / "meta.json").exists()  # kept for inspection
    assert reloaded.count("good") == 30  # the other collection is untouched
    if restarted_empty:
        assert reloaded.collections() == ["bad", "good"] and reloaded.count("bad") == 0
        reloaded.upsert("bad", ["again"], vectors[[1]])  # and usable at once
        assert reopen(tmp_path, opened).count("bad") == 1
    else:
        assert reloaded.collections() == ["good"]
        assert reloaded.search("bad", vectors[[0]], k=1) == [[]]
        reloaded.ensure_collection("bad", 8)
        assert reloaded.count("bad") == 0


# --- disk failures ------------------------------------------------------------------------------------
def test_failed_append_changes_nothing_and_the_next_append_overwrites_its_bytes(tmp_path: Path) -> None:
    """A real write failure: RLIMIT_FSIZE makes the kernel refuse bytes past a size (EFBIG)."""
    vectors = random_unit(4)
    np.save(tmp_path / "v.npy", vectors)
    report = run_child(
        """
        import json, resource, signal, sys
        from pathlib import Path
        import numpy as np
        from facesocial.errors import VectorIndexUnavailableError
        from facesocial.store.local_index import LocalVectorIndex

        root = Path(sys.argv[1]); vectors = np.load(root / "v.npy")
        index = LocalVectorIndex(root / "index")
        index.ensure_collection("c", 8)
        index.upsert("c", ["a"], vectors[[0]])
        size = (root / "index" / "c" / "journal.bin").stat().st_size
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 10, resource.RLIM_INFINITY))
        try:
            index.upsert("c", ["b", "c"], vectors[1:3])
            failed = None
        except VectorIndexUnavailableError as exc:
            failed = [exc.code, exc.status]
        after_failure = [sorted(index.ids("c")), index.search("c", vectors[[1]], k=1)[0][0].id]
        torn = (root / "index" / "c" / "journal.bin").stat().st_size - size
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        index.upsert("c", ["d"], vectors[[3]])
        print(json.dumps({"failed": failed, "after_failure": after_failure, "torn_bytes": torn}))
        """,
        str(tmp_path),
    )
    outcome = json.loads(report.stdout)
    assert outcome["failed"] == ["SERVICE_UNAVAILABLE", 503]
    assert outcome["after_failure"] == [["a"], "a"]  # memory did not get ahead of disk
    assert 0 < outcome["torn_bytes"] <= 10  # the kernel did write a partial record
    index = LocalVectorIndex(tmp_path / "index")
    try:
        assert sorted(index.ids("c")) == ["a", "d"] and index.damaged == []
    finally:
        index.close()


def test_failed_swap_rename_keeps_the_old_content(
    tmp_path: Path, opened: list[LocalVectorIndex], monkeypatch: pytest.MonkeyPatch
) -> None:
    index = reopen(tmp_path, opened)
    index.ensure_collection("c", 8)
    old = random_unit(10)
    index.upsert("c", [f"old{i}" for i in range(10)], old)
    before = content(index, "c")
    real_rename = os.rename
    calls = []

    def failing_rename(source: os.PathLike[str] | str, target: os.PathLike[str] | str) -> None:
        calls.append(Path(target).name)
        if Path(target).name == "c":  # the second rename of the swap: new content into place
            raise OSError(28, "No space left on device")
        real_rename(source, target)

    monkeypatch.setattr(local_index_module.os, "rename", failing_rename)
    with pytest.raises(VectorIndexUnavailableError):
        index.replace_collection("c", 8, [(["new0", "new1"], random_unit(2, seed=3), None)])
    monkeypatch.undo()
    assert calls == [".c.old", "c", "c"]  # moved away, failed to swap in, moved back
    assert same_content(content(index, "c"), before)
    assert same_content(content(reopen(tmp_path, opened), "c"), before)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "c"]


# --- crashes during replace_collection -----------------------------------------------------------------
_CRASHING_REBUILD = """
    import os, shutil, signal, sys
    from pathlib import Path
    import numpy as np
    from facesocial.store.local_index import LocalVectorIndex

    root, crash_at = Path(sys.argv[1]), sys.argv[2]
    new = np.load(root.parent / "new.npy")

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    renames = []
    real_rename, real_rmtree = os.rename, shutil.rmtree

    def rename(source, target):
        renames.append(target)
        if crash_at == f"rename{len(renames)}":
            die()
        real_rename(source, target)

    def rmtree(path, *args, **kwargs):
        if crash_at == "cleanup" and Path(path).name == ".c.old" and Path(path).exists():
            (Path(path) / "meta.json").unlink()  # part of the old folder is already gone
            die()
        real_rmtree(path, *args, **kwargs)

    os.rename, shutil.rmtree = rename, rmtree

    def batches():
        for start in range(0, len(new), 20):
            if crash_at == "batches" and start == 40:
                die()
            yield [f"new{i}" for i in range(start, min(start + 20, len(new)))], new[start : start + 20], None

    index = LocalVectorIndex(root)
    index.replace_collection("c", 8, batches())
    print("finished")
"""


@pytest.mark.parametrize(
    ("crash_at", "expected"),
    [
        ("batches", "old"),  # while reading the new content
        ("rename1", "old"),  # staging complete, nothing swapped yet
        ("rename2", "new"),  # old moved aside, new not yet in place: load finishes the swap
        ("cleanup", "new"),  # swapped, old half deleted
        ("none", "new"),
    ],
)
def test_crash_during_replace_collection_leaves_old_or_new(
    tmp_path: Path, opened: list[LocalVectorIndex], crash_at: str, expected: str
) -> None:
    root = tmp_path / "index"
    index = reopen(root, opened)
    index.ensure_collection("c", 8)
    old_vectors, new_vectors = random_unit(30), random_unit(70, seed=9)
    index.upsert("c", [f"old{i}" for i in range(30)], old_vectors)
    index.compact()
    index.upsert("c", ["old_journalled"], old_vectors[[0]])
    old = content(index, "c")
    index.close()
    np.save(tmp_path / "new.npy", new_vectors)

    result = run_child(_CRASHING_REBUILD, str(root), crash_at, check=False)
    if crash_at == "none":
        assert result.returncode == 0 and "finished" in result.stdout, result.stderr
    else:
        assert result.returncode == -signal.SIGKILL, result.stderr

    reloaded = reopen(root, opened)
    new = {f"new{i}": new_vectors[i] for i in range(70)}
    assert same_content(content(reloaded, "c"), old if expected == "old" else new)
    assert reloaded.damaged == []
    assert sorted(p.name for p in root.iterdir()) == [".lock", "c"]  # temporary folders settled


@pytest.mark.parametrize(
    ("leftovers", "expected"),
    [
        ({".c.dropped"}, None),  # a crash mid-drop: the collection stays dropped
        ({".c.created"}, None),  # a crash mid-create: never created
        ({".c.new"}, None),  # a build of a new collection that never reached its rename
        ({"c", ".c.new"}, "c"),  # an abandoned build next to the live collection
        ({"c", ".c.old"}, "c"),  # a swap whose cleanup did not finish
        ({".c.old"}, ".c.old"),  # no complete build to roll forward to: the old content returns
        ({".c.old", ".c.new"}, ".c.new"),  # between the two renames: the complete build wins
    ],
)
def test_leftover_temporary_folders_are_settled_on_load(
    tmp_path: Path, opened: list[LocalVectorIndex], leftovers: set[str], expected: str | None
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    for number, folder in enumerate(sorted(leftovers)):
        # A complete collection folder whose only id names the folder it is placed as.
        maker = reopen(tmp_path / f"make{number}", opened)
        maker.ensure_collection("c", 8)
        maker.upsert("c", [folder], random_unit(1, seed=number))
        maker.close()
        os.rename(tmp_path / f"make{number}" / "c", root / folder)
    if "c" in leftovers:
        (root / "c" / "snapshot.npz.tmp").write_bytes(b"half a snapshot")  # an atomic write cut short
    index = reopen(root, opened)
    if expected is None:
        assert index.collections() == []
    else:
        assert list(index.ids("c")) == [expected]
        assert not (root / "c" / "snapshot.npz.tmp").exists()
    assert sorted(p.name for p in root.iterdir()) == [".lock", *(["c"] if expected else [])]


def test_writes_during_a_rebuild_are_carried_into_the_new_content(
    tmp_path: Path, opened: list[LocalVectorIndex]
) -> None:
    index = reopen(tmp_path, opened)
    index.ensure_collection("c", 8)
    vectors = random_unit(10)
    index.upsert("c", ["keep", "gone", "changed"], vectors[:3])

    def batches() -> Iterator[IndexBatch]:
        # What SQL held when the rebuild read it ...
        yield ["keep", "gone", "changed"], vectors[:3], None
        # ... while requests go on against the live collection.
        index.upsert("c", ["added"], vectors[[3]])
        index.delete("c", ["gone"])
        index.upsert("c", ["changed"], vectors[[4]])

    assert index.replace_collection("c", 8, batches()) == 3
    expected = {"keep": vectors[0], "changed": vectors[4], "added": vectors[3]}
    assert same_content(content(index, "c"), expected)
    assert same_content(content(reopen(tmp_path, opened), "c"), expected)


# --- exclusive ownership ---------------------------------------------------------------------------------
_HOLD = """
    import sys, time
    from pathlib import Path
    from facesocial.store.local_index import LocalVectorIndex
    index = LocalVectorIndex(Path(sys.argv[1]))
    print("ready", flush=True)
    time.sleep(600)
"""

_TRY_OPEN = """
    import json, sys
    from pathlib import Path
    from facesocial.errors import FaceSocialError
    from facesocial.store.local_index import LocalVectorIndex
    try:
        LocalVectorIndex(Path(sys.argv[1])).close()
        print(json.dumps({"opened": True}))
    except FaceSocialError as exc:
        print(json.dumps({"code": exc.code, "status": exc.status, "message": exc.message, **exc.details}))
"""


def test_a_second_process_is_refused_with_the_holders_pid(
    tmp_path: Path, opened: list[LocalVectorIndex]
) -> None:
    index = reopen(tmp_path, opened)
    refused = json.loads(run_child(_TRY_OPEN, str(tmp_path)).stdout)
    assert refused["code"] == "INDEX_IN_USE" and refused["status"] == 409
    assert refused["pid"] == os.getpid() and str(os.getpid()) in refused["message"]
    index.close()
    assert json.loads(run_child(_TRY_OPEN, str(tmp_path)).stdout) == {"opened": True}


def test_a_second_index_in_the_same_process_is_refused_until_close(
    tmp_path: Path, opened: list[LocalVectorIndex]
) -> None:
    index = reopen(tmp_path, opened)
    with pytest.raises(IndexInUseError) as refused:
        LocalVectorIndex(tmp_path)
    assert refused.value.details["pid"] == os.getpid()
    index.close()
    index.close()  # twice is fine
    with pytest.raises(VectorIndexUnavailableError):
        index.count("c")  # a closed index answers nothing: another process may own the folder now
    with pytest.raises(VectorIndexUnavailableError):
        index.ping()
    reopen(tmp_path, opened).ping()


def test_the_lock_dies_with_a_killed_process(tmp_path: Path, opened: list[LocalVectorIndex]) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_HOLD), str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        with pytest.raises(IndexInUseError) as refused:
            LocalVectorIndex(tmp_path)
        assert refused.value.details["pid"] == child.pid
        assert f"process {child.pid}" in refused.value.message
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    reopen(tmp_path, opened).ensure_collection("c", 8)  # free again, no stale-lock cleanup needed


def test_errors_are_facesocial_errors() -> None:
    assert issubclass(IndexInUseError, FaceSocialError) and IndexInUseError.code == "INDEX_IN_USE"
    assert VectorIndexUnavailableError.code == "SERVICE_UNAVAILABLE"
    assert (
        VectorIndexUnavailableError.status == 503
        and "vector index" in VectorIndexUnavailableError.default_message
    )


# --- approximate search: graphs per partition ----------------------------------------------------
SMALL_ANN = VectorIndexSettings(ann_min_vectors=200, build_threads=2)


def clustered(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    """Face-like: n vectors in clusters of 4 around random centres (not uniform noise)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n // 4 + 1, dim))
    return l2_normalise(centres[np.arange(n) // 4] + 0.3 * rng.normal(size=(n, dim))).astype(np.float32)


def ann_index(
    root: Path, opened: list[LocalVectorIndex], settings: VectorIndexSettings = SMALL_ANN
) -> LocalVectorIndex:
    for index in opened:
        index.close()
    index = LocalVectorIndex(root, settings=settings)
    opened.append(index)
    return index


def exact_top(vectors: np.ndarray, ids: list[str], query: np.ndarray, k: int) -> list[str]:
    return [ids[i] for i in np.argsort(-(vectors @ query), kind="stable")[:k]]


def test_graph_search_agrees_with_exact_search(tmp_path: Path, opened: list[LocalVectorIndex]) -> None:
    index = ann_index(tmp_path, opened)
    index.ensure_collection("c", 32)
    vectors, ids = clustered(2000), [f"f{i}" for i in range(2000)]
    for start in range(0, 2000, 500):  # crosses ann_min_vectors on the way: a background build
        index.upsert("c", ids[start : start + 500], vectors[start : start + 500], partitions=["T"] * 500)
    assert index.wait_for_graphs(60)
    [stats] = index.graph_stats("c")
    assert stats["partition"] == "T" and stats["graph_vectors"] == 2000
    queries = clustered(100, seed=5)
    found = 0
    for query, hits in zip(queries, index.search("c", queries, k=10, partition="T"), strict=True):
        expected = exact_top(vectors, ids, query, 10)
        found += len({h.id for h in hits} & set(expected))
        for hit in hits:  # exact cosine, from the float32 matrix, whatever the graph stores
            assert hit.score == pytest.approx(float(vectors[int(hit.id[1:])] @ query), abs=1e-6)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert found / 1000 >= 0.97
    exact = LocalVectorIndex(tmp_path / "exact", settings=VectorIndexSettings(ann=False))
    opened.append(exact)
    exact.replace_collection("c", 32, [(ids, vectors, ["T"] * 2000)])
    assert exact.graph_stats("c") == []


def test_graphs_keep_tenants_apart(tmp_path: Path, opened: list[LocalVectorIndex]) -> None:
    index = ann_index(tmp_path, opened)
    a = clustered(600, seed=1)
    b = l2_normalise(a + 0.01 * clustered(600, seed=2)).astype(np.float32)  # closer to A's queries
    small = clustered(50, seed=3)
    batches: list[IndexBatch] = [
        ([f"a{i}" for i in range(600)], a, ["A"] * 600),
        ([f"b{i}" for i in range(600)], b, ["B"] * 600),
        ([f"s{i}" for i in range(50)], small, ["S"] * 50),  # below ann_min_vectors: exact
    ]
    index.replace_collection("c", 32, batches)
    assert sorted(s["partition"] for s in index.graph_stats("c")) == ["A", "B"]  # built before the swap
    for tenant, prefix in (("A", "a"), ("B", "b"), ("S", "s")):
        for hits in index.search("c", b[:20], k=10, partition=tenant):
            assert len(hits) == 10 and all(h.id.startswith(prefix) for h in hits)
    everyone = index.search("c", small[:5], k=3)  # no partition: every graph and the small ones
    assert [row[0].id for row in everyone] == [f"s{i}" for i in range(5)]
    # Groups: a large one goes through A's graph and a filter, a small one is exact.
    large = [f"a{i}" for i in range(0, 600, 2)] + ["b1", "b3"]
    for query, hits in zip(
        a[:20], index.search("c", a[:20], k=5, allowed_ids=large, partition="A"), strict=True
    ):
        members = [i for i in range(0, 600, 2)]
        assert [h.id for h in hits] == exact_top(a[members], [f"a{i}" for i in members], query, 5)
    assert {
        h.id for h in index.search("c", a[[1]], k=5, allowed_ids=["a1", "a9", "b1"], partition="A")[0]
    } == {
        "a1",
        "a9",
    }


def test_saved_graph_is_reused_with_the_journal_replayed(
    tmp_path: Path, opened: list[LocalVectorIndex]
) -> None:
    index = ann_index(tmp_path, opened)
    vectors, ids = clustered(1000), [f"f{i}" for i in range(1000)]
    index.replace_collection("c", 32, [(ids, vectors, ["T"] * 1000)])  # snapshot + graph written
    graph_files = sorted(p.name for p in (tmp_path / "c").glob("graph-*.hnsw"))
    assert len(graph_files) == 1
    extra = clustered(10, seed=9)
    index.upsert("c", [f"x{i}" for i in range(10)], extra, partitions=["T"] * 10)  # journalled only
    index.delete("c", ["f0", "f1", "f2"])
    index = ann_index(tmp_path, opened)
    [stats] = index.graph_stats("c")
    assert stats["origin"] == "file" and stats["graph_vectors"] == 1007
    assert index.search("c", extra[[4]], k=1, partition="T")[0][0].id == "x4"
    returned = {h.id for row in index.search("c", vectors[:3], k=10, partition="T") for h in row}
    assert not returned & {"f0", "f1", "f2"}
    index.delete("c", ["f3"])
    index.compact()  # the graph, with its tombstones, saved with the new snapshot
    index = ann_index(tmp_path, opened)
    [stats] = index.graph_stats("c")
    assert stats["origin"] == "file" and stats["graph_vectors"] == 1006
    assert index.search("c", vectors[[3]], k=1, partition="T")[0][0].id != "f3"


def _saved_graph(tmp_path: Path, opened: list[LocalVectorIndex]) -> tuple[np.ndarray, Path]:
    """800 vectors of partition T in collection c, snapshotted with their graph; index closed."""
    index = ann_index(tmp_path, opened)
    vectors, ids = clustered(800), [f"f{i}" for i in range(800)]
    index.replace_collection("c", 32, [(ids, vectors, ["T"] * 800)])
    [graph_file] = (tmp_path / "c").glob("graph-*.hnsw")
    index.close()
    return vectors, graph_file


def _assert_rebuilt_and_correct(tmp_path: Path, opened: list[LocalVectorIndex], vectors: np.ndarray) -> None:
    index = ann_index(tmp_path, opened)
    hits = index.search("c", vectors[[5]], k=1, partition="T")[0]  # exact until the graph is back
    assert hits[0].id == "f5"
    assert index.wait_for_graphs(60)
    [stats] = index.graph_stats("c")
    assert stats["origin"] == "built" and stats["graph_vectors"] == 800
    assert index.damaged == []  # derived data: nothing of the truth was lost
    assert index.search("c", vectors[[7]], k=1, partition="T")[0][0].id == "f7"


@pytest.mark.parametrize("damage", ["garbage", "truncated", "stale_generation", "missing"])
def test_a_bad_graph_file_is_rebuilt_and_search_stays_correct(
    tmp_path: Path, opened: list[LocalVectorIndex], damage: str
) -> None:
    vectors, graph_file = _saved_graph(tmp_path, opened)
    if damage == "garbage":
        graph_file.write_bytes(b"\x00not a graph" * 100)
    elif damage == "truncated":
        graph_file.write_bytes(graph_file.read_bytes()[:1000])
    elif damage == "stale_generation":
        manifest = json.loads((tmp_path / "c" / "graphs.json").read_text())
        (tmp_path / "c" / "graphs.json").write_text(json.dumps({**manifest, "generation": "older"}))
    else:
        graph_file.unlink()
    _assert_rebuilt_and_correct(tmp_path, opened, vectors)


def _rewrite_graph(folder: Path, graph_file: Path, data: bytes) -> None:
    """Replace a graph file and make graphs.json's checksum match it (a tamper, not rot)."""
    graph_file.write_bytes(data)
    manifest = json.loads((folder / "graphs.json").read_text())
    for entry in manifest["graphs"].values():
        if entry["file"] == graph_file.name:
            entry["crc32"] = zlib.crc32(data)
    (folder / "graphs.json").write_text(json.dumps(manifest))


_HEADER = struct.Struct("<6Q i I 3Q d Q")  # hnswlib 0.8 saveIndex (store/local_graphs.py)


def _tampered(data: bytes, how: str) -> bytes:
    fields = list(_HEADER.unpack_from(data))
    if how == "more_elements":
        fields[2] += 5  # cur_element_count beyond the blocks that follow
    elif how == "entry_point":
        fields[7] = fields[2] + 10
    elif how == "link_out_of_range":
        body = bytearray(data)
        # First element's level-0 list: count word, then ids; point its first link far away.
        struct.pack_into("<I", body, _HEADER.size, 1)
        struct.pack_into("<I", body, _HEADER.size + 4, 10**9)
        return bytes(body)
    return _HEADER.pack(*fields) + data[_HEADER.size :]


@pytest.mark.parametrize(
    "damage", ["more_elements", "entry_point", "link_out_of_range", "other_dimension", "other_version"]
)
def test_a_malformed_graph_with_a_matching_checksum_is_refused_not_loaded(
    tmp_path: Path, opened: list[LocalVectorIndex], damage: str
) -> None:
    # hnswlib reads such files out of bounds (SIGSEGV, found by fuzzing): a crash here would
    # kill the test process, so a passing test means the check refused the file first.
    vectors, graph_file = _saved_graph(tmp_path, opened)
    if damage == "other_dimension":  # a well-formed graph of 64-D vectors
        other = hnswlib.Index(space="ip", dim=64)
        other.init_index(max_elements=800, M=SMALL_ANN.connectivity)
        other.add_items(np.tile(vectors, (1, 2)), np.arange(800))
        other.save_index(str(tmp_path / "other.hnsw"))
        _rewrite_graph(tmp_path / "c", graph_file, (tmp_path / "other.hnsw").read_bytes())
    elif damage == "other_version":
        manifest = json.loads((tmp_path / "c" / "graphs.json").read_text())
        for entry in manifest["graphs"].values():
            entry["hnswlib"] = "0.0.1"
        (tmp_path / "c" / "graphs.json").write_text(json.dumps(manifest))
    else:
        _rewrite_graph(tmp_path / "c", graph_file, _tampered(graph_file.read_bytes(), damage))
    _assert_rebuilt_and_correct(tmp_path, opened, vectors)


def test_a_graph_holding_another_partitions_keys_never_returns_them(
    tmp_path: Path, opened: list[LocalVectorIndex]
) -> None:
    index = ann_index(tmp_path, opened)
    a, b = clustered(600, seed=1), clustered(600, seed=2)
    index.replace_collection(
        "c",
        32,
        [([f"a{i}" for i in range(600)], a, ["A"] * 600), ([f"b{i}" for i in range(600)], b, ["B"] * 600)],
    )
    collection = index._collections["c"]
    keys = {name: collection._keys[part.rows] for name, part in collection.partitions.items()}
    manifest = json.loads((tmp_path / "c" / "graphs.json").read_text())
    graph_of_a = tmp_path / "c" / manifest["graphs"]["A"]["file"]
    index.close()
    # A's graph file replaced by one holding A's and B's keys (checksum made to match).
    union = hnswlib.Index(space="ip", dim=32)
    union.init_index(max_elements=1200, M=SMALL_ANN.connectivity)
    union.add_items(np.concatenate([a, b]), np.concatenate([keys["A"], keys["B"]]))
    union.save_index(str(tmp_path / "union.hnsw"))
    _rewrite_graph(tmp_path / "c", graph_of_a, (tmp_path / "union.hnsw").read_bytes())
    index = ann_index(tmp_path, opened)
    stats = {s["partition"]: s for s in index.graph_stats("c")}
    assert stats["A"]["origin"] == "file"  # loaded: it holds every key of A
    for hits in index.search("c", b[:30], k=10, partition="A"):  # B's own vectors as queries
        assert len(hits) == 10 and all(h.id.startswith("a") for h in hits)


def test_deletes_and_moved_rows_keep_graph_keys_right(tmp_path: Path, opened: list[LocalVectorIndex]) -> None:
    index = ann_index(tmp_path, opened)
    vectors, ids = clustered(600), [f"f{i}" for i in range(600)]
    index.replace_collection("c", 32, [(ids, vectors, ["T"] * 500 + ["U"] * 100)])
    gone = [f"f{i}" for i in range(0, 500, 3)]  # each delete moves the last row into the hole
    index.delete("c", gone)
    moved = l2_normalise(vectors[[10, 11]] + 0.5).astype(np.float32)
    index.upsert("c", ["f10", "f11"], moved, partitions=["T", "U"])  # new vectors; f11 changes tenant
    kept = [i for i in range(500) if f"f{i}" not in set(gone) and i not in (10, 11)]
    for i, hits in zip(kept, index.search("c", vectors[kept], k=1, partition="T"), strict=True):
        assert hits[0].id == f"f{i}" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert index.search("c", moved[[0]], k=1, partition="T")[0][0].id == "f10"
    assert index.search("c", moved[[1]], k=1, partition="U")[0][0].id == "f11"
    assert "f11" not in {h.id for h in index.search("c", moved[[1]], k=20, partition="T")[0]}
    collection = index._collections["c"]
    part = collection.partitions["T"]
    assert part.graph is not None and part.graph.contains_all(collection._keys[part.rows])
    assert index.count("c", partition="T") == len(kept) + 1


def write_v2_collection(
    folder: Path, ids: list[str], vectors: np.ndarray, journal_ids: list[str], journal: np.ndarray
) -> None:
    """A collection as the version before partitions left it: meta without the flag, v2 journal."""
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps({"dimension": vectors.shape[1]}))
    np.savez(folder / "snapshot.npz", ids=np.array(ids, dtype=str), matrix=vectors)
    payload = b"U" + struct.pack("<I", len(journal_ids))
    for face_id in journal_ids:
        payload += struct.pack("<H", len(face_id)) + face_id.encode()
    payload += journal.astype("<f4").tobytes()
    length = struct.pack("<I", len(payload))
    header = struct.pack("<II", len(payload), zlib.crc32(payload, zlib.crc32(length)))
    (folder / "journal.bin").write_bytes(MAGIC_V2 + header + payload)


def test_a_v2_collection_loads_and_asks_for_a_partition_rebuild(
    tmp_path: Path, opened: list[LocalVectorIndex]
) -> None:
    vectors = random_unit(5)
    write_v2_collection(tmp_path / "c", ["a", "b", "c"], vectors[:3], ["d", "e"], vectors[3:])
    write_v2_collection(
        tmp_path / "empty", [], np.zeros((0, 8), np.float32), [], np.zeros((0, 8), np.float32)
    )
    index = reopen(tmp_path, opened)
    assert sorted(index.ids("c")) == ["a", "b", "c", "d", "e"] and index.damaged == []
    assert index.search("c", vectors[[3]], k=1)[0][0].id == "d"
    assert index.count("c", partition="") == 5  # old vectors sit in partition ""
    assert (tmp_path / "c" / "journal.bin").read_bytes() == MAGIC  # converted: no v3 behind a v2 magic
    assert index.needs_partition_rebuild("c") and not index.needs_partition_rebuild("empty")
    index.upsert("c", ["f"], random_unit(1, seed=4), partitions=["T"])
    index = reopen(tmp_path, opened)
    assert index.needs_partition_rebuild("c") and index.count("c", partition="T") == 1
    index.replace_collection("c", 8, [(["a", "b"], vectors[:2], ["T", "U"])])
    assert not index.needs_partition_rebuild("c")
    index = reopen(tmp_path, opened)
    assert not index.needs_partition_rebuild("c") and index.count("c", partition="U") == 1
    assert json.loads((tmp_path / "empty" / "meta.json").read_text())["partitioned"] is True


def test_concurrent_writes_and_searches_never_cross_tenants(
    tmp_path: Path, opened: list[LocalVectorIndex]
) -> None:
    index = ann_index(tmp_path, opened, VectorIndexSettings(ann_min_vectors=300, build_threads=1))
    index.ensure_collection("c", 32)
    base = clustered(400, seed=1)
    index.upsert("c", [f"a{i}" for i in range(400)], base, partitions=["A"] * 400)
    index.upsert("c", [f"b{i}" for i in range(400)], base, partitions=["B"] * 400)  # identical vectors
    failures: list[BaseException] = []
    stop = threading.Event()

    def writer(tenant: str, seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for step in range(300):
                new = clustered(8, seed=seed * 1000 + step)
                names = [f"{tenant.lower()}n{seed}_{step}_{j}" for j in range(8)]
                index.upsert("c", names, new, partitions=[tenant] * 8)
                index.delete("c", [f"{tenant.lower()}{int(i)}" for i in rng.integers(0, 400, 3)])
                index.delete("c", names[:4])
        except BaseException as exc:
            failures.append(exc)

    def searcher(tenant: str) -> None:
        try:
            while not stop.is_set():
                for hits in index.search("c", base[:4], k=10, partition=tenant):
                    if any(not h.id.startswith(tenant.lower()) for h in hits):
                        raise AssertionError(f"foreign id in {tenant}'s results: {hits}")
        except BaseException as exc:
            failures.append(exc)

    writers = [threading.Thread(target=writer, args=(t, s)) for t, s in (("A", 1), ("B", 2), ("A", 3))]
    searchers = [threading.Thread(target=searcher, args=(t,)) for t in ("A", "B", "A")]
    for thread in writers + searchers:
        thread.start()
    for thread in writers:
        thread.join(120)
    stop.set()
    for thread in searchers:
        thread.join(30)
    assert failures == []
    assert index.wait_for_graphs(60)
    collection = index._collections["c"]
    for name, part in collection.partitions.items():
        assert part.graph is not None, name
        assert part.graph.contains_all(collection._keys[part.rows])
    assert index.count("c", partition="A") + index.count("c", partition="B") == index.count("c")


def test_the_container_rebuilds_an_unpartitioned_face_collection_from_sql(tmp_path: Path) -> None:
    from facesocial.container import Container
    from facesocial.settings import Settings
    from facesocial.store import migrate
    from facesocial.store.db import Database
    from facesocial.store.tables import FACE_ACTIVE, FaceData, User

    settings = Settings(data_dir=tmp_path, vector_index=SMALL_ANN)
    database = Database(settings.resolved_database_url())
    migrate.upgrade(database)
    tenants = [uuid.uuid4(), uuid.uuid4()]
    vectors = random_unit(6)
    face_ids = [str(uuid.uuid4()) for _ in range(6)]
    with database.session() as session:
        for i, face_id in enumerate(face_ids):
            user = uuid.uuid4()
            tenant = tenants[i % 2]
            session.add(User(user_id=user, external_id=uuid.uuid4(), tenant_id=tenant, consent_given=True))
            session.flush()
            session.add(
                FaceData(
                    id=uuid.UUID(face_id), user_id=user, tenant_id=tenant, face_id=face_id,
                    embedding_version="t", embedding_dimension=8, milvus_collection="faces_8d",
                    embedding=vectors[i].tobytes(), status=FACE_ACTIVE,
                )
            )  # fmt: skip
    database.dispose()
    # The index as the version before partitions left it: every face, no partitions.
    write_v2_collection(settings.resolved_index_dir() / "faces_8d", face_ids, vectors, [], vectors[:0])
    container = Container(settings)
    try:
        index = container.index
        assert not index.needs_partition_rebuild("faces_8d")
        assert [index.count("faces_8d", partition=str(t)) for t in tenants] == [3, 3]
        hits = index.search("faces_8d", vectors[[1]], k=6, partition=str(tenants[0]))[0]
        assert {h.id for h in hits} == {face_ids[0], face_ids[2], face_ids[4]}
    finally:
        container.close()


def test_readiness_says_degraded_while_a_face_collection_lacks_partitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from facesocial.api.routers import health
    from facesocial.container import Container
    from facesocial.services import index_maintenance
    from facesocial.settings import Settings
    from facesocial.store import migrate

    def failing(*_args: object) -> list[object]:
        raise RuntimeError("the database went away mid-rebuild")

    # The start-up rebuild fails: the server still starts, and readiness says what is missing.
    monkeypatch.setattr(index_maintenance, "rebuild_unpartitioned", failing)
    settings = Settings(data_dir=tmp_path, vector_index=SMALL_ANN)
    vectors = random_unit(4)
    write_v2_collection(
        settings.resolved_index_dir() / "faces_8d", ["a", "b", "c", "d"], vectors, [], vectors[:0]
    )
    container = Container(settings)
    try:
        entry = health._vector_index(container)
        assert entry["status"] == "degraded" and entry["needs_partition_rebuild"] == ["faces_8d"]
        monkeypatch.undo()
        migrate.upgrade(container.database)  # an empty database: the rebuild empties the collection
        index_maintenance.rebuild_unpartitioned(container.database, container.index)
        assert health._vector_index(container)["status"] == "ok"
    finally:
        container.close()
