"""FaceTracker on synthetic boxes: crossing faces, gating, track life, summaries."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from facesocial.video.tracking import FaceTracker, TrackSummary

SIZE = 80.0


def box(cx: float, cy: float, size: float = SIZE) -> list[float]:
    return [cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2]


def unit(rng: np.random.Generator, dim: int = 128) -> npt.NDArray[np.float32]:
    vector = rng.normal(size=dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


def run(
    tracker: FaceTracker,
    frames: list[tuple[int, list[list[float]], list[npt.NDArray[np.float32]] | None]],
    rng: np.random.Generator,
) -> list[list[int]]:
    """Feed each frame's detections in a shuffled order; return the ids in the original order."""
    out = []
    for timestamp, boxes, vectors in frames:
        order = rng.permutation(len(boxes))
        shuffled = np.asarray(boxes, np.float32)[order]
        embeddings = None if vectors is None else np.stack(vectors)[order]
        ids = tracker.update(shuffled, timestamp, embeddings)
        assert ids.dtype == np.int64 and ids.shape == (len(boxes),)
        restored = np.empty_like(ids)
        restored[order] = ids
        out.append(restored.tolist())
    return out


def test_two_faces_crossing_keep_their_ids_by_motion() -> None:
    # A walks right, B walks left, 10 px apart vertically, 40 px (half a face) per sample; they
    # pass each other between two samples (A at 300 and B at 320, then A at 340 and B at 280),
    # where the nearest last position is the other face's: only their motion tells them apart.
    frames = []
    for step in range(12):
        t = step * 200
        frames.append((t, [box(100 + 0.2 * t, 200), box(520 - 0.2 * t, 210)], None))
    ids = run(FaceTracker(), frames, np.random.default_rng(0))
    assert ids[0][0] != ids[0][1]
    assert all(row == ids[0] for row in ids), ids


def test_faces_that_meet_and_turn_back_are_told_apart_by_embeddings() -> None:
    # A and B walk towards each other, meet at the same spot, and walk back where they came
    # from. Motion alone predicts that they walk on (and swaps them); their faces say who is who.
    rng = np.random.default_rng(1)
    face_a, face_b = unit(rng), unit(rng)
    positions = [100, 150, 200, 250, 250, 200, 150, 100]
    frames = []
    for step, offset in enumerate(positions):
        noisy = [l2(face_a + 0.3 * unit(rng)), l2(face_b + 0.3 * unit(rng))]
        frames.append((step * 250, [box(offset, 200), box(500 - offset, 200)], noisy))
    with_faces = run(FaceTracker(), frames, rng)
    assert all(row == with_faces[0] for row in with_faces), with_faces
    motion_only = run(FaceTracker(), [(t, b, None) for t, b, _ in frames], rng)
    assert motion_only[-1] == motion_only[0][::-1]  # the swap the embeddings prevent


def l2(vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return vector / np.linalg.norm(vector)


def test_a_different_face_in_the_same_place_gets_a_new_id() -> None:
    rng = np.random.default_rng(2)
    tracker = FaceTracker()
    first = tracker.update(np.array([box(200, 200)]), 0, unit(rng)[None, :])
    # A scene cut: someone else, same spot, half a second later.
    second = tracker.update(np.array([box(205, 200)]), 500, unit(rng)[None, :])
    assert first[0] != second[0]


def test_new_person_far_away_gets_a_new_id_and_both_continue() -> None:
    tracker = FaceTracker()
    (a,) = tracker.update(np.array([box(100, 100)]), 0)
    b_ids = tracker.update(np.array([box(104, 100), box(600, 400)]), 100)
    assert b_ids[0] == a and b_ids[1] != a
    assert tracker.update(np.array([box(600, 404), box(108, 100)]), 200).tolist() == [b_ids[1], a]


@pytest.mark.parametrize(("gap_ms", "same"), [(900, True), (1000, True), (1100, False)])
def test_tracks_survive_max_missed_seconds(gap_ms: int, same: bool) -> None:
    tracker = FaceTracker(max_missed_seconds=1.0)
    (first,) = tracker.update(np.array([box(100, 100)]), 0)
    tracker.update(np.zeros((0, 4), np.float32), gap_ms // 2)  # a frame without faces
    (again,) = tracker.update(np.array([box(102, 100)]), gap_ms)
    assert (again == first) == same


def test_coarse_sampling_does_not_end_tracks_seen_in_the_last_sample() -> None:
    # Samples 1.5 s apart with max_missed_seconds=1: a face in every sample keeps its id...
    tracker = FaceTracker(max_missed_seconds=1.0)
    ids = [tracker.update(np.array([box(100 + 10 * i, 100)]), 1500 * i)[0] for i in range(4)]
    assert ids == [1, 1, 1, 1]
    # ... but once a sample misses it, the next one is 3 s after it was last seen.
    tracker.update(np.zeros((0, 4)), 6000)
    assert tracker.update(np.array([box(140, 100)]), 7500)[0] == 2


def test_end_tracks_marks_a_shot_boundary() -> None:
    tracker = FaceTracker()
    (first,) = tracker.update(np.array([box(100, 100)]), 0)
    tracker.end_tracks()
    (second,) = tracker.update(np.array([box(100, 100)]), 40)
    assert second != first
    assert [t.frames_seen for t in tracker.tracks()] == [1, 1]


@pytest.mark.parametrize(
    ("moved", "gated"),
    [
        (box(100 + 0.4 * SIZE, 100), False),  # a small step
        (box(100 + 3 * SIZE, 100), True),  # too far for 100 ms
        (box(100, 100, size=2 * SIZE), True),  # twice the size in 100 ms
    ],
)
def test_impossible_pairs_are_never_matched(moved: list[float], gated: bool) -> None:
    tracker = FaceTracker()
    (first,) = tracker.update(np.array([box(100, 100)]), 0)
    cost = tracker.cost_matrix(np.array([moved]), 100)
    assert cost.shape == (1, 1) and np.isinf(cost[0, 0]) == gated
    (second,) = tracker.update(np.array([moved]), 100)
    assert (second != first) == gated


def test_larger_gaps_allow_larger_steps() -> None:
    tracker = FaceTracker(max_missed_seconds=2.0)
    tracker.update(np.array([box(100, 100)]), 0)
    far = np.array([box(100 + 1.2 * SIZE, 100)])
    assert np.isinf(tracker.cost_matrix(far, 100)[0, 0])
    assert np.isfinite(tracker.cost_matrix(far, 500)[0, 0])


def test_summaries() -> None:
    tracker = FaceTracker()
    tracker.update(np.array([box(100, 100)]), 0)
    tracker.update(np.array([box(102, 100), box(500, 500)]), 40)
    tracker.update(np.array([box(104, 100)]), 80)
    assert tracker.tracks() == [TrackSummary(1, 0, 80, 3), TrackSummary(2, 40, 40, 1)]


def test_bad_calls_are_refused() -> None:
    tracker = FaceTracker()
    tracker.update(np.array([box(100, 100)]), 100)
    with pytest.raises(ValueError, match="precedes"):
        tracker.update(np.array([box(100, 100)]), 50)
    with pytest.raises(ValueError, match="embeddings"):
        tracker.update(np.array([box(100, 100)]), 200, np.ones((2, 8), np.float32))
    with pytest.raises(ValueError):
        FaceTracker(iou_weight=0, distance_weight=0)
