import os
import threading
import time

import pytest

from assistant.config import AnswerSettings
from assistant.web.capacity import Capacity
from assistant.errors import Busy


def test_slots_are_bounded_and_the_wait_too():
    capacity = Capacity(2, wait=0.2)
    with capacity.slot(), capacity.slot():
        started = time.monotonic()
        with pytest.raises(Busy, match="every answer slot is taken. Please try again in 1 s") as busy:
            with capacity.slot():
                pass
        assert busy.value.retry_after == 1 and 0.15 < time.monotonic() - started < 2
    with capacity.slot():  # released again, even after the refusal
        pass


def test_a_waiting_request_gets_the_slot_that_comes_free():
    capacity = Capacity(1, wait=5)
    held = threading.Event()
    got: list[float] = []

    def holder():
        with capacity.slot():
            held.set()
            time.sleep(0.3)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    with capacity.slot():
        got.append(time.monotonic())
    thread.join()
    assert got


def test_at_least_one_slot():
    assert Capacity(0, wait=-1).slots == 1


def test_built_from_the_answer_settings():
    capacity = Capacity.of(AnswerSettings(max_answers=3, answer_wait=2.5))
    assert (capacity.slots, capacity.wait) == (3, 2.5)
    assert Capacity.of(AnswerSettings(max_answers=0)).slots == (os.cpu_count() or 1)  # 0: one per core
