"""DecodeGate with real threads: the pixel budget holds, order is kept, waiting ends in SERVER_BUSY."""

from __future__ import annotations

import threading
import time

import pytest

from facesocial import errors
from facesocial.settings import ImageLimits
from facesocial.vision.decode_gate import DecodeGate


class Recorder:
    """Tracks the pixels inside the gate as the holders themselves see them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.inside = 0
        self.peak = 0
        self.order: list[str] = []

    def enter(self, name: str, pixels: int) -> None:
        with self._lock:
            self.inside += pixels
            self.peak = max(self.peak, self.inside)
            self.order.append(name)

    def leave(self, pixels: int) -> None:
        with self._lock:
            self.inside -= pixels


def run_threads(targets: list[threading.Thread]) -> None:
    for thread in targets:
        thread.start()
    for thread in targets:
        thread.join(timeout=30)
        assert not thread.is_alive()


def test_the_pixel_budget_is_never_exceeded() -> None:
    gate = DecodeGate(pixel_budget=100, wait_seconds=20)
    recorder = Recorder()
    failures: list[BaseException] = []
    sizes = [10, 40, 60, 25, 100, 5, 70, 33, 50, 90, 1, 45] * 3

    def work(index: int, pixels: int) -> None:
        try:
            with gate.admit(pixels):
                recorder.enter(str(index), pixels)
                assert gate.pixels_in_flight <= 100
                time.sleep(0.002 * (index % 5))
                recorder.leave(pixels)
        except BaseException as exc:
            failures.append(exc)

    run_threads([threading.Thread(target=work, args=(i, s)) for i, s in enumerate(sizes)])
    assert not failures
    assert recorder.peak <= 100
    assert recorder.peak > 100 // 2  # several images really ran side by side
    assert len(recorder.order) == len(sizes)
    assert gate.pixels_in_flight == 0 and gate.waiting == 0


def test_an_image_larger_than_the_budget_passes_alone() -> None:
    gate = DecodeGate(pixel_budget=100, wait_seconds=0.05)
    refused: list[BaseException] = []

    def small() -> None:
        try:
            with gate.admit(1):
                pass
        except errors.ServerBusyError as exc:
            refused.append(exc)

    with gate.admit(1_000):
        assert gate.pixels_in_flight == 100  # weighed as the whole budget
        run_threads([threading.Thread(target=small)])
    assert len(refused) == 1  # nothing else got in beside it
    assert gate.pixels_in_flight == 0


def test_waiting_times_out_with_server_busy_and_retry_after() -> None:
    gate = DecodeGate(pixel_budget=100, wait_seconds=0.2)
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with gate.admit(80):
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    started = time.monotonic()
    with pytest.raises(errors.ServerBusyError) as caught, gate.admit(30):
        pass
    waited = time.monotonic() - started
    release.set()
    holder.join(10)
    assert 0.15 <= waited < 5
    assert caught.value.status == 503 and caught.value.code == "SERVER_BUSY"
    assert caught.value.details == {"retry_after": 1}
    assert gate.waiting == 0  # the timed-out caller left the queue
    with gate.admit(100):  # and left no pixels behind
        assert gate.pixels_in_flight == 100


def test_a_waiter_that_fits_enters_as_soon_as_pixels_are_released() -> None:
    gate = DecodeGate(pixel_budget=100, wait_seconds=10)
    release = threading.Event()
    entered = threading.Event()
    holding = threading.Event()

    def hold() -> None:
        with gate.admit(70):
            holding.set()
            release.wait(10)

    def wait_for_room() -> None:
        with gate.admit(50):
            entered.set()

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    waiter = threading.Thread(target=wait_for_room)
    waiter.start()
    assert not entered.wait(0.2)  # 70 + 50 > 100: it waits
    release.set()
    assert entered.wait(5)
    holder.join(10)
    waiter.join(10)


def test_small_images_are_not_starved_and_large_ones_keep_their_turn() -> None:
    """Arrival order is kept: a large image waiting for room is not overtaken forever by a
    stream of small ones, and the small ones behind it get in right after it."""
    gate = DecodeGate(pixel_budget=100, wait_seconds=10)
    recorder = Recorder()
    first_in = threading.Event()
    release_first = threading.Event()

    def first() -> None:
        with gate.admit(60):
            recorder.enter("first", 60)
            first_in.set()
            release_first.wait(10)
            recorder.leave(60)

    def job(name: str, pixels: int) -> None:
        with gate.admit(pixels):
            recorder.enter(name, pixels)
            time.sleep(0.01)
            recorder.leave(pixels)

    threads = [threading.Thread(target=first)]
    threads[0].start()
    assert first_in.wait(10)
    queued = [threading.Thread(target=job, args=("large", 90))]
    queued += [threading.Thread(target=job, args=(f"small{i}", 10)) for i in range(5)]
    for thread in queued:  # start in a known order: the large one queues first
        thread.start()
        deadline = time.monotonic() + 5
        while gate.waiting < queued.index(thread) + 1 and time.monotonic() < deadline:
            time.sleep(0.001)
    time.sleep(0.05)
    # 60 + 10 would fit, but the small ones queue behind the large one.
    assert recorder.order == ["first"]
    release_first.set()
    for thread in [*threads, *queued]:
        thread.join(10)
    assert recorder.order == ["first", "large", "small0", "small1", "small2", "small3", "small4"]
    assert recorder.peak <= 100


def test_the_gate_comes_from_the_limits() -> None:
    gate = DecodeGate.from_limits(ImageLimits(decode_pixel_budget=1234, decode_wait_seconds=2.5))
    assert gate.pixel_budget == 1234
    with pytest.raises(ValueError):
        DecodeGate(pixel_budget=0, wait_seconds=1)
    with pytest.raises(ValueError):
        DecodeGate(pixel_budget=1, wait_seconds=-1)


def test_an_exception_inside_releases_the_pixels() -> None:
    gate = DecodeGate(pixel_budget=100, wait_seconds=0)
    with pytest.raises(RuntimeError), gate.admit(100):
        raise RuntimeError("decoder failed")
    assert gate.pixels_in_flight == 0
    with gate.admit(100):
        pass


def test_at_most_max_in_flight_images_run_at_once_whatever_their_size() -> None:
    gate = DecodeGate(pixel_budget=1_000_000, wait_seconds=20, max_in_flight=2)
    lock = threading.Lock()
    inside = [0]
    peak = [0]
    failures: list[BaseException] = []

    def work() -> None:
        try:
            with gate.admit(10):
                with lock:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                assert gate.images_in_flight <= 2
                time.sleep(0.01)
                with lock:
                    inside[0] -= 1
        except BaseException as exc:
            failures.append(exc)

    run_threads([threading.Thread(target=work) for _ in range(12)])
    assert not failures
    # Real threads contend: the bound was reached (2) but never passed.
    assert peak[0] == 2
    assert gate.images_in_flight == 0


def test_a_full_set_of_slots_answers_server_busy_after_the_wait() -> None:
    gate = DecodeGate(pixel_budget=1_000_000, wait_seconds=0.05, max_in_flight=1)
    with gate.admit(1), pytest.raises(errors.ServerBusyError) as caught, gate.admit(1):
        pass
    assert caught.value.details["retry_after"] >= 1
    with gate.admit(1):  # the slot is free again
        assert gate.images_in_flight == 1


def test_max_in_flight_comes_from_the_limits_and_must_be_positive() -> None:
    assert DecodeGate.from_limits(ImageLimits(max_concurrent_images=3)).max_in_flight == 3
    assert DecodeGate.from_limits(ImageLimits(max_concurrent_images=None)).max_in_flight is None
    with pytest.raises(ValueError):
        DecodeGate(pixel_budget=1, wait_seconds=1, max_in_flight=0)
