"""Throttling failed authentications per client address, so that a flood of wrong keys costs the service next
to nothing and cannot slow down the clients whose keys are valid.

Each address has a token bucket of `burst` failures, refilled at `per_minute` a minute. While an address's
bucket is empty, its requests with a key the service has not verified recently are refused at once (429 and
Retry-After) without a database lookup; keys already verified (the principal cache) still pass, so a valid
client behind the same address (a NAT, a proxy) keeps working. Pure bookkeeping in memory, per process.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

MAX_ADDRESSES = 100_000
"""Addresses tracked at most; beyond it, addresses whose bucket has refilled are forgotten first."""


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class FailedAuthThrottle:
    """`retry_after(address, now)` before checking a key; `failed(address, now)` when the key was wrong. Times
    are monotonic seconds. `per_minute <= 0` turns throttling off."""

    def __init__(self, *, per_minute: float, burst: int) -> None:
        self._rate = per_minute / 60
        self._burst = max(burst, 1)
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def retry_after(self, address: str, now: float) -> int | None:
        """None when the address may try a key now; else the whole seconds until it may try again."""
        if not self.enabled:
            return None
        bucket = self._buckets.get(address)
        if bucket is None:
            return None
        tokens = self._refilled(bucket, now)
        if tokens >= 1:
            return None
        return max(math.ceil((1 - tokens) / self._rate), 1)

    def failed(self, address: str, now: float) -> None:
        """Count one failed authentication of the address."""
        if not self.enabled:
            return
        with self._lock:
            bucket = self._buckets.get(address)
            if bucket is None:
                if len(self._buckets) >= MAX_ADDRESSES:
                    self._forget_refilled(now)
                bucket = self._buckets[address] = _Bucket(float(self._burst), now)
            bucket.tokens = max(self._refilled(bucket, now) - 1, 0.0)
            bucket.updated = now

    def _refilled(self, bucket: _Bucket, now: float) -> float:
        return min(bucket.tokens + (now - bucket.updated) * self._rate, float(self._burst))

    def _forget_refilled(self, now: float) -> None:
        full = [address for address, bucket in self._buckets.items() if self._refilled(bucket, now) >= self._burst]
        for address in full:
            del self._buckets[address]
        if len(self._buckets) >= MAX_ADDRESSES:  # a flood from that many addresses at once: start afresh
            self._buckets.clear()
