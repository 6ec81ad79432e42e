"""Per-key rate limiting: a token bucket for each API key, in this process.

Invariants: a key starts with ``burst`` tokens, gains ``per_minute / 60`` per second up to
``burst``, and each request takes one; a refused request takes none and learns how many seconds
until a token is free (the ``Retry-After`` header). Buckets live in one process: with ``--workers N``
the effective limit is up to N times higher (a shared limiter belongs in the gateway in front).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def acquire(self, key: str) -> float | None:
        """None if the request may go ahead, else the seconds to wait before retrying."""
        if not self.enabled:
            return None
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return None
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
