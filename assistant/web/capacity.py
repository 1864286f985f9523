"""How many answers run at once: a bounded number of slots, each request waiting a bounded
time for one. Past that the edge answers "busy" (HTTP 503 with `Retry-After`, a line in the
chat) instead of queueing without end: on 2 cores, 40 answers at once only make all 40 slow.
The server makes one `Capacity` and gives it to the API and the chat (`server.build_server`).
"""

from __future__ import annotations

import math
import os
import threading
from contextlib import contextmanager
from typing import Iterator

import anyio

from ..config import AnswerSettings
from ..errors import Busy
from ..i18n import N_


class Capacity:
    """At most `slots` answers in flight; a request waits at most `wait` seconds for a slot."""

    def __init__(self, slots: int, wait: float, observer=None):
        self.slots = max(1, slots)
        self.wait = max(0.0, wait)
        self.observer = observer  # `observe.Observer`: told of waiting, running and busy requests (metrics)
        self._free = threading.BoundedSemaphore(self.slots)
        # Requests from the event loop wait for a slot in threads of their own: waiting in the
        # 40 worker threads would leave none to run the answers that hold the slots (measured:
        # 0.8 answers/s and 80 % 503s with 50 clients, against 3.4 answers/s without a cap).
        self._waiting = anyio.CapacityLimiter(256)

    @classmethod
    def of(cls, answers: AnswerSettings, observer=None) -> "Capacity":
        """The slots ASSISTANT_MAX_ANSWERS sets (0: one per core), each waited for ASSISTANT_ANSWER_WAIT s."""
        return cls(answers.max_answers or os.cpu_count() or 1, answers.answer_wait, observer)

    def acquire(self) -> bool:
        """Take a slot, waiting up to `wait` seconds; False when none came free."""
        if self.observer is None:
            return self._free.acquire(timeout=self.wait)
        self.observer.slot_waiting(1)
        try:
            got = self._free.acquire(timeout=self.wait)
        finally:
            self.observer.slot_waiting(-1)
        if got:
            self.observer.slot_running(1)
        else:
            self.observer.busy()
        return got

    async def acquire_async(self) -> bool:
        """`acquire`, awaited on the event loop (the API's requests)."""
        return await anyio.to_thread.run_sync(self.acquire, limiter=self._waiting)

    def release(self) -> None:
        self._free.release()
        if self.observer is not None:
            self.observer.slot_running(-1)

    def busy(self) -> Busy:
        """The error for a request that got no slot: a sentence a person understands."""
        retry = max(1, math.ceil(self.wait))
        return Busy(N_("Many people are asking right now, and every answer slot is taken. "
                       "Please try again in {wait} s."), retry_after=retry, wait=retry)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a slot for the block.

        Raises:
            Busy: no slot came free within `wait` seconds.
        """
        if not self.acquire():
            raise self.busy()
        try:
            yield
        finally:
            self.release()
