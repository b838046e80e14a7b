"""CrossRequestBatcher with real threads: each caller gets its own rows back, batches form under load."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from facesocial.models.batcher import CrossRequestBatcher


class SlowDouble:
    """A 'model' that doubles its input and records the batch sizes it was given."""

    def __init__(self, delay: float = 0.02) -> None:
        self.delay = delay
        self.batches: list[int] = []
        self.concurrent = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        with self._lock:
            self.concurrent += 1
            self.peak = max(self.peak, self.concurrent)
            self.batches.append(len(rows))
        time.sleep(self.delay)
        with self._lock:
            self.concurrent -= 1
        return rows * 2.0


def test_every_caller_gets_exactly_its_own_rows_and_batches_form_under_load() -> None:
    model = SlowDouble()
    batcher = CrossRequestBatcher(model, max_batch=8)
    results: dict[int, np.ndarray] = {}
    failures: list[BaseException] = []

    def call(index: int) -> None:
        try:
            rows = np.full((1 + index % 3, 4), float(index), dtype=np.float32)
            results[index] = batcher(rows)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not failures
    for index, output in results.items():
        assert output.shape == (1 + index % 3, 4)
        assert np.all(output == 2.0 * index)
    assert len(results) == 24
    # One model run at a time, never more than max_batch rows, and real batching happened.
    assert model.peak == 1
    assert max(model.batches) <= 8
    assert len(model.batches) < 24
    stats = batcher.stats
    assert stats.calls == 24 and stats.runs == len(model.batches)
    assert stats.rows == sum(1 + i % 3 for i in range(24))


def test_a_lone_caller_runs_at_once_with_its_own_rows() -> None:
    model = SlowDouble(delay=0.0)
    batcher = CrossRequestBatcher(model, max_batch=4)
    out = batcher(np.ones((3, 2), dtype=np.float32))
    assert out.shape == (3, 2) and model.batches == [3]
    # A single input larger than max_batch runs whole, alone.
    assert batcher(np.ones((9, 2), dtype=np.float32)).shape == (9, 2)
    assert model.batches == [3, 9]


def test_a_failing_batch_raises_in_every_caller_and_the_batcher_recovers() -> None:
    calls = {"n": 0}
    gate = threading.Event()

    def model(rows: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 1:
            gate.wait(5)  # hold the first run so the others queue behind it
            return rows
        if calls["n"] == 2:
            raise RuntimeError("inference failed")
        return rows

    batcher = CrossRequestBatcher(model, max_batch=16)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            batcher(np.ones((1, 2), dtype=np.float32))
        except RuntimeError as exc:
            errors.append(exc)

    first = threading.Thread(target=call)
    first.start()
    time.sleep(0.05)
    queued = [threading.Thread(target=call) for _ in range(3)]
    for thread in queued:
        thread.start()
    time.sleep(0.1)
    gate.set()
    for thread in [first, *queued]:
        thread.join(10)
    # The three queued callers shared the second run, which failed: each of them got the error.
    assert len(errors) == 3
    assert batcher(np.ones((2, 2), dtype=np.float32)).shape == (2, 2)


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError):
        CrossRequestBatcher(lambda rows: rows, max_batch=0)
