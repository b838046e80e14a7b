"""Batch one model's inputs across concurrent callers, without adding latency when idle.

Batching pays on a CPU because one ONNX Runtime call over N inputs keeps both cores busy
through the small late layers of a network, where a single input leaves them idle, and it
replaces N competing sessions (each asking for every core) by one. The batcher never waits
for company: a caller that finds the model idle runs at once with what is queued (usually
only itself); callers that arrive while the model is busy queue up, and the next of them to
run takes everything queued, up to ``max_batch`` rows. Under no load that is plain
sequential inference; under load the batch grows by itself ("adaptive" or "continuous"
batching, as in NVIDIA Triton's dynamic batcher with a zero queue delay).

Any caller's thread may run a batch holding other callers' rows (there is no thread of its
own to start, stop or leak); results and errors go back to each caller. Inputs must share
their shape beyond the first axis; each caller gets exactly the rows of its own input.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.generic]


@dataclass(slots=True, eq=False)  # compared by identity: rows are arrays
class _Request:
    rows: Array
    result: Array | None = None
    error: BaseException | None = None
    done: bool = False
    # Set by the runner for telemetry and tests: how many rows the batch holding it had.
    batch_rows: int = 0


@dataclass(frozen=True, slots=True)
class BatchStats:
    """Counters since start: calls, model runs, rows run; ``rows / runs`` is the mean batch."""

    calls: int
    runs: int
    rows: int


class CrossRequestBatcher:
    """Run ``model`` (rows in, one output row per input row) over the rows of concurrent callers.

    ``model``: maps an array of shape (n, ...) to an array whose first axis is n.
    ``max_batch``: the most rows in one run (>= 1); one caller's larger input runs alone, whole.
    Thread-safe; call from worker threads. Raises ValueError for ``max_batch`` < 1. When a
    batch of several callers fails, each caller's rows run again alone, so a caller gets an
    exception only when its own rows make ``model`` raise.
    """

    def __init__(self, model: Callable[[Array], Array], max_batch: int) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._model = model
        self._max_batch = max_batch
        self._changed = threading.Condition(threading.Lock())
        self._queue: list[_Request] = []
        self._busy = False
        self._calls = 0
        self._runs = 0
        self._rows = 0

    @property
    def stats(self) -> BatchStats:
        with self._changed:
            return BatchStats(self._calls, self._runs, self._rows)

    def __call__(self, rows: Array) -> Array:
        """The model's output for ``rows`` (shape (n, ...)), run alone or in a larger batch."""
        if len(rows) == 0:
            return self._model(rows)
        request = _Request(rows)
        batch: list[_Request] = []
        with self._changed:
            self._calls += 1
            self._queue.append(request)
            while self._busy and not request.done:
                self._changed.wait()
            if not request.done:  # the model is idle: this thread runs the next batch
                batch = self._take(request)
                self._busy = True
        if batch:
            self._run(batch)
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def _checked(self, rows: Array) -> Array:
        output = self._model(rows)
        if len(output) != len(rows):
            raise RuntimeError(f"the model returned {len(output)} rows for {len(rows)} inputs")
        return output

    @staticmethod
    def _spread(batch: list[_Request], output: Array) -> None:
        start = 0
        for request in batch:
            request.result = output[start : start + len(request.rows)]
            start += len(request.rows)

    def _take(self, own: _Request) -> list[_Request]:
        """The caller's own request, then queued ones in arrival order while they fit."""
        self._queue.remove(own)
        batch, rows = [own], len(own.rows)
        while self._queue and rows + len(self._queue[0].rows) <= self._max_batch:
            request = self._queue.pop(0)
            batch.append(request)
            rows += len(request.rows)
        return batch

    def _run(self, batch: list[_Request]) -> None:
        total = sum(len(r.rows) for r in batch)
        try:
            stacked = batch[0].rows if len(batch) == 1 else np.concatenate([r.rows for r in batch])
            self._spread(batch, self._checked(stacked))
        except Exception as failure:
            if len(batch) == 1:
                batch[0].error = failure
            else:
                # One caller's rows may be what broke the run: each caller runs alone again and
                # gets its own result or its own error, so one bad input fails one request.
                for request in batch:
                    try:
                        request.result = self._checked(request.rows)
                    except Exception as exc:
                        request.error = exc
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: every caller learns of it
            for request in batch:
                request.error = exc
        finally:
            with self._changed:
                for request in batch:
                    request.batch_rows = total
                    request.done = True
                self._runs += 1
                self._rows += total
                self._busy = False
                self._changed.notify_all()
