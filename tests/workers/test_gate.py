"""workers.gate.DrainGate: bounded concurrency, and no call lost while a runner finishes."""

from __future__ import annotations

import threading
import time

import pytest

from workers.gate import DrainGate


def test_at_most_slots_runners_and_the_rest_return_at_once() -> None:
    gate = DrainGate(2)
    inside = 0
    most = 0
    lock = threading.Lock()
    release = threading.Event()

    def work() -> int:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        release.wait(5)
        with lock:
            inside -= 1
        return 1

    threads = [threading.Thread(target=gate.run, args=(work,)) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while inside < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    assert gate.run(work) == 0  # full: returns at once instead of waiting
    assert time.monotonic() - started < 1
    release.set()
    for t in threads:
        t.join(5)
    assert most == 2


def test_a_call_that_found_the_gate_full_makes_a_runner_drain_again() -> None:
    gate = DrainGate(1)
    runs = 0
    first_run_inside = threading.Event()
    let_first_finish = threading.Event()

    def work() -> int:
        nonlocal runs
        runs += 1
        if runs == 1:
            first_run_inside.set()
            let_first_finish.wait(5)
        return 1

    runner = threading.Thread(target=gate.run, args=(work,))
    runner.start()
    assert first_run_inside.wait(5)
    assert gate.run(work) == 0  # the kick arrives while the runner is still inside
    let_first_finish.set()
    runner.join(5)
    assert runs == 2  # the runner drained once more for it: nothing waits for the next kick


def test_a_lone_call_runs_once() -> None:
    gate = DrainGate(2)
    calls: list[int] = []
    assert gate.run(lambda: calls.append(1) or 3) == 3
    assert calls == [1]


def test_a_gate_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        DrainGate(0)
