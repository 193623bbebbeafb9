"""Retry policy: exponential backoff with jitter, for transient failures only."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ._constants import DEFAULT_MAX_RETRIES, INITIAL_RETRY_DELAY, MAX_RETRY_DELAY, RETRY_JITTER
from .errors import Rank1ConnectionError, Rank1Error, Rank1TimeoutError, ServerOverloadedError

LOGGER = logging.getLogger("rank1_client")
T = TypeVar("T")


def is_transient(error: Rank1Error) -> bool:
    """Whether sending the same request again may succeed.

    Queue full (``ServerOverloadedError``) and an unreachable or draining server (``Rank1ConnectionError``:
    connection refused, ``NOT_FOUND``/``UNAVAILABLE`` while it shuts down) are transient. A passed deadline is
    not (it would pass again), nor are authentication failures, invalid requests and server errors.
    """
    if isinstance(error, Rank1TimeoutError):
        return False
    return isinstance(error, (ServerOverloadedError, Rank1ConnectionError))


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before sending a failed request again."""

    max_retries: int = DEFAULT_MAX_RETRIES
    initial_delay: float = INITIAL_RETRY_DELAY
    max_delay: float = MAX_RETRY_DELAY
    jitter: float = RETRY_JITTER

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be at least 0, got {self.max_retries}")
        if self.initial_delay < 0 or self.max_delay < 0:
            raise ValueError("retry delays must not be negative")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter}")

    def delay(self, retry: int, random_fraction: float) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first); ``random_fraction`` is in [0, 1)."""
        return min(self.initial_delay * 2.0**retry, self.max_delay) * (1 - self.jitter * random_fraction)

    def next_delay(self, retry: int, error: Rank1Error) -> float | None:
        """The wait before retry number ``retry`` after ``error``, or ``None`` when the error must be raised."""
        if retry >= self.max_retries or not is_transient(error):
            return None
        delay = self.delay(retry, random.random())
        LOGGER.info("retry %d of %d in %.2f s after %s", retry + 1, self.max_retries, delay, error)
        return delay


def call_with_retries(policy: RetryPolicy, call: Callable[[], T]) -> T:
    """Run ``call`` and retry it on transient errors, sleeping between attempts."""
    retry = 0
    while True:
        try:
            return call()
        except Rank1Error as error:
            delay = policy.next_delay(retry, error)
            if delay is None:
                raise
        time.sleep(delay)
        retry += 1


async def acall_with_retries(policy: RetryPolicy, call: Callable[[], Awaitable[T]]) -> T:
    """Await ``call()`` and retry it on transient errors; cancelling the task stops the retries too."""
    retry = 0
    while True:
        try:
            return await call()
        except Rank1Error as error:
            delay = policy.next_delay(retry, error)
            if delay is None:
                raise
        await asyncio.sleep(delay)
        retry += 1
