"""Retry policy: exponential backoff with jitter, for transient failures only, within the call's deadline."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ._constants import DEFAULT_MAX_RETRIES, INITIAL_RETRY_DELAY, MAX_RETRY_DELAY, RETRY_JITTER, UNKNOWN_MODEL_RETRIES
from .errors import (
    ClientClosedError,
    ModelNotFoundError,
    Rank1ConnectionError,
    Rank1Error,
    Rank1TimeoutError,
    ServerOverloadedError,
)

LOGGER = logging.getLogger("rank1_client")
T = TypeVar("T")


def is_transient(error: Rank1Error) -> bool:
    """Whether sending the same request again may succeed.

    Queue full or rate-limited (``ServerOverloadedError``) and an unreachable or draining server
    (``Rank1ConnectionError``: connection refused, ``NOT_FOUND``/``UNAVAILABLE`` while it shuts down) are transient.
    A passed deadline is not (it would pass again), nor a closed client, an unknown model, authentication
    failures, invalid requests and server errors.
    """
    if isinstance(error, (Rank1TimeoutError, ClientClosedError)):
        return False
    return isinstance(error, (ServerOverloadedError, Rank1ConnectionError))


def needs_new_channel(error: Rank1Error) -> bool:
    """Whether the retry should open a new connection: after connection failures (a draining pod keeps answering
    on the old one), not after a full queue (the server is fine, only busy)."""
    return isinstance(error, Rank1ConnectionError) and is_transient(error)


class UnverifiedUnknownModel(Rank1ConnectionError):
    """``NOT_FOUND`` "unknown model" while the server's readiness could not be read: a typo or a draining server."""


@dataclass(frozen=True)
class Deadline:
    """The end of a whole call (``time.monotonic()`` seconds), or none."""

    at: float | None = None
    seconds: float | None = None

    @classmethod
    def after(cls, seconds: float | None) -> Deadline:
        return cls(None if seconds is None else time.monotonic() + seconds, seconds)

    def remaining(self) -> float | None:
        """Seconds left (never negative), or ``None`` without a deadline."""
        return None if self.at is None else max(0.0, self.at - time.monotonic())

    def cap(self, timeout: float | None) -> float | None:
        """The gRPC deadline of the next request: ``timeout`` cut to what is left of the call."""
        remaining = self.remaining()
        if remaining is None:
            return timeout
        if remaining <= 0:
            raise Rank1TimeoutError(f"the call's deadline of {self.seconds:g} s passed")
        return remaining if timeout is None else min(timeout, remaining)

    def allows(self, delay: float) -> bool:
        """Whether a retry after ``delay`` seconds still starts before the deadline."""
        remaining = self.remaining()
        return remaining is None or delay < remaining


NO_DEADLINE = Deadline()


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before sending a failed request again."""

    max_retries: int = DEFAULT_MAX_RETRIES
    initial_delay: float = INITIAL_RETRY_DELAY
    max_delay: float = MAX_RETRY_DELAY
    jitter: float = RETRY_JITTER

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ValueError(f"max_retries must be an integer of at least 0, got {self.max_retries!r}")
        if self.initial_delay < 0 or self.max_delay < 0:
            raise ValueError("retry delays must not be negative")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter}")

    def delay(self, retry: int, random_fraction: float) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first); ``random_fraction`` is in [0, 1)."""
        return min(self.initial_delay * 2.0**retry, self.max_delay) * (1 - self.jitter * random_fraction)

    def retries_for(self, error: Rank1Error) -> int:
        if isinstance(error, UnverifiedUnknownModel):
            return min(self.max_retries, UNKNOWN_MODEL_RETRIES)
        return self.max_retries

    def next_delay(self, retry: int, error: Rank1Error, deadline: Deadline = NO_DEADLINE) -> float | None:
        """The wait before retry number ``retry`` after ``error``, or ``None`` when the error must be raised."""
        if retry >= self.retries_for(error) or not is_transient(error):
            return None
        delay = self.delay(retry, random.random())
        if not deadline.allows(delay):
            return None
        LOGGER.info("retry %d of %d in %.2f s after %s", retry + 1, self.retries_for(error), delay, error)
        return delay


def final_error(error: Rank1Error, attempts: int) -> Rank1Error:
    """The error to raise once retrying stops: an "unknown model" that never went away is a missing model."""
    if isinstance(error, UnverifiedUnknownModel):
        final = ModelNotFoundError(
            f"{error.message} (on {attempts} attempt{'s' if attempts > 1 else ''}; the server's readiness could "
            "not be read to tell a mistyped model_name from a draining server)", status=error.status)
        final._concerning(request_id=error.request_id, query=error.query, position=error.position,
                          document_indices=error.document_indices)
        return final
    return error


def call_with_retries(policy: RetryPolicy, call: Callable[[], T], *, deadline: Deadline = NO_DEADLINE,
                      sleep: Callable[[float], object] = time.sleep,
                      reconnect: Callable[[Rank1Error], object] | None = None) -> T:
    """Run ``call`` and retry it on transient errors, sleeping between attempts (``sleep`` may raise to stop);
    ``reconnect`` runs before a retry after a connection failure."""
    retry = 0
    while True:
        try:
            return call()
        except Rank1Error as error:
            delay = policy.next_delay(retry, error, deadline)
            if delay is None:
                final = final_error(error, retry + 1)
                if final is error:
                    raise
                raise final from error
            if reconnect is not None and needs_new_channel(error):
                reconnect(error)
        sleep(delay)
        retry += 1


async def acall_with_retries(policy: RetryPolicy, call: Callable[[], Awaitable[T]], *,
                             deadline: Deadline = NO_DEADLINE,
                             reconnect: Callable[[Rank1Error], object] | None = None) -> T:
    """Await ``call()`` and retry it on transient errors; cancelling the task stops the retries too."""
    retry = 0
    while True:
        try:
            return await call()
        except Rank1Error as error:
            delay = policy.next_delay(retry, error, deadline)
            if delay is None:
                final = final_error(error, retry + 1)
                if final is error:
                    raise
                raise final from error
            if reconnect is not None and needs_new_channel(error):
                reconnect(error)
        await asyncio.sleep(delay)
        retry += 1
