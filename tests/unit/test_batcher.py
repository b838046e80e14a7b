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


def test_one_bad_input_fails_its_own_caller_only_and_the_batcher_recovers() -> None:
    hold = threading.Event()
    first_run = threading.Event()

    def model(rows: np.ndarray) -> np.ndarray:
        if not first_run.is_set():
            first_run.set()
            hold.wait(5)  # hold the first run so the others queue behind it and share a batch
        if np.any(rows < 0):
            raise ValueError("negative input")
        return rows * 2.0

    batcher = CrossRequestBatcher(model, max_batch=16)
    outcomes: dict[str, object] = {}

    def call(name: str, value: float) -> None:
        try:
            outcomes[name] = batcher(np.full((1, 2), value, dtype=np.float32))
        except ValueError as exc:
            outcomes[name] = exc

    first = threading.Thread(target=call, args=("first", 1.0))
    first.start()
    assert first_run.wait(5)
    queued = [threading.Thread(target=call, args=(f"good{i}", float(i))) for i in range(3)]
    queued.append(threading.Thread(target=call, args=("bad", -1.0)))
    for thread in queued:
        thread.start()
    time.sleep(0.1)
    hold.set()
    for thread in [first, *queued]:
        thread.join(10)
    # The queued callers shared one run, which the bad input broke; each then ran alone.
    assert isinstance(outcomes["bad"], ValueError)
    for i in range(3):
        good = outcomes[f"good{i}"]
        assert isinstance(good, np.ndarray) and np.all(good == 2.0 * i)
    assert isinstance(outcomes["first"], np.ndarray)
    assert batcher(np.ones((2, 2), dtype=np.float32)).shape == (2, 2)


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError):
        CrossRequestBatcher(lambda rows: rows, max_batch=0)
