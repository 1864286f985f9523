"""How many answers run at once: a bounded number of slots, each request waiting a bounded
time for one. Past that the edge answers "busy" (HTTP 503 with `Retry-After`, a line in the
chat) instead of queueing without end: on 2 cores, 40 answers at once only make all 40 slow.
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager
from typing import Iterator

from .errors import Busy


class Capacity:
    """At most `slots` answers in flight; a request waits at most `wait` seconds for a slot."""

    def __init__(self, slots: int, wait: float):
        self.slots = max(1, slots)
        self.wait = max(0.0, wait)
        self._free = threading.BoundedSemaphore(self.slots)

    def acquire(self) -> bool:
        """Take a slot, waiting up to `wait` seconds; False when none came free."""
        return self._free.acquire(timeout=self.wait)

    def release(self) -> None:
        self._free.release()

    def busy(self) -> Busy:
        """The error for a request that got no slot: a sentence a person understands."""
        retry = max(1, math.ceil(self.wait))
        return Busy(f"Many people are asking right now, and every answer slot is taken. "
                    f"Please try again in {retry} s.", retry_after=retry)

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
