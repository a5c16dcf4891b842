"""Bounded queues between threads: a full queue drops its oldest item and counts it, so producers never block.

A lossless producer (a file replayed as fast as possible) may instead wait for room with
``put_wait``. Closing a queue tells its consumer that nothing more will come: ``get_batch``
still hands out what is waiting, and ``finished`` turns true once the queue is closed and empty.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class DropOldestQueue(Generic[T]):
    """A thread-safe FIFO of at most ``maxsize`` items that drops the oldest one when full."""

    def __init__(self, name: str, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"queue {name}: maxsize must be at least 1, got {maxsize}")
        self.name = name
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._lock = threading.Condition()
        self._closed = False
        self.put_count = 0
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Append ``item`` without ever blocking; False when the oldest item had to be dropped for it."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"queue {self.name} is closed")
            kept = len(self._items) < self.maxsize
            if not kept:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self.put_count += 1
            self._lock.notify_all()
            return kept

    def put_wait(self, item: T, timeout: float | None = None) -> bool:
        """Append ``item`` once there is room (lossless); False when ``timeout`` passed or the queue closed."""
        with self._lock:
            if not self._lock.wait_for(lambda: self._closed or len(self._items) < self.maxsize, timeout):
                return False
            if self._closed:
                return False
            self._items.append(item)
            self.put_count += 1
            self._lock.notify_all()
            return True

    def get_batch(self, timeout: float | None = None, max_items: int | None = None) -> list[T]:
        """Everything waiting (at most ``max_items``), oldest first; waits up to ``timeout`` for a first item."""
        with self._lock:
            self._lock.wait_for(lambda: self._items or self._closed, timeout)
            count = len(self._items) if max_items is None else min(max_items, len(self._items))
            batch = [self._items.popleft() for _ in range(count)]
            if batch:
                self._lock.notify_all()
            return batch

    def close(self) -> None:
        """No more puts; waiting consumers and lossless producers wake up."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    @property
    def closed(self) -> bool:
        with self._lock:
            return self._closed

    @property
    def finished(self) -> bool:
        """Closed and empty: the consumer has seen everything."""
        with self._lock:
            return self._closed and not self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
