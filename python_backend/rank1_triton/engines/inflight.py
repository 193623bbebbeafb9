"""In-flight batching for the PyTorch engine, the way TensorRT-LLM's executor batches on GPUs.

One background thread runs the model a step at a time. Each step

1. removes cancelled requests wherever they are (queued, prefilling or decoding): ``Ticket.cancel()`` takes
   effect at the next step, a request's own ``is_cancelled`` is polled every ``cancel_poll_s``;
2. runs one decode forward over the running batch (one token per sequence);
3. spends the rest of the step's token budget (``max_num_tokens``) on prefill: waiting prompts together
   (left-padded; the prefix they share, e.g. template + query, computed once) or the next chunk of one prompt
   longer than the budget. A prompt whose prefill is complete joins the running batch: its KV rows are padded to
   the batch's width and appended.

A sequence leaves the batch as soon as it is done and its result is delivered at once, so no request waits for
another's batch. Only an idle engine waits, for a burst of arrivals to end (``join_gap_s``, at most
``join_window_s``), so that one request's documents, which arrive one call at a time, share a prefill. The queue
of waiting requests is bounded (``max_queue_size``): beyond it ``submit`` raises EngineQueueFullError, which the
engine model returns as UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

from ..contract import DEFAULT_ENGINE_QUEUE_SIZE, DEFAULT_MAX_NUM_TOKENS
from ..errors import EngineQueueFullError, RequestCancelledError
from .base import EngineCapabilities, GenerationRequest, GenerationResult
from .torch_engine import SequenceState, TorchEngine, advance

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class SchedulerLimits:
    """The scheduler's knobs (TensorRT-LLM's names where it has the same one)."""

    max_batch_size: int = 64  # sequences decoding together
    max_num_tokens: int = DEFAULT_MAX_NUM_TOKENS  # tokens one step feeds through the model: decode tokens + prefill
    max_queue_size: int = DEFAULT_ENGINE_QUEUE_SIZE  # requests waiting for a batch slot; 0: unbounded
    min_shared_prefix: int = 16  # a prefill group shares its common prefix from this many tokens on; 0: never
    cancel_poll_s: float = 0.1  # how often requests' own is_cancelled() is asked (it may cost an IPC round trip)
    # An idle engine waits for a burst of arrivals (the documents of one request come one BLS call at a time) to
    # end before it prefills: until no request came for join_gap_s, join_window_s at most. 0: never wait.
    join_gap_s: float = 0.005
    join_window_s: float = 0.02

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {self.max_batch_size}")
        if self.max_num_tokens <= self.max_batch_size:
            raise ValueError(f"max_num_tokens ({self.max_num_tokens}) must exceed max_batch_size "
                             f"({self.max_batch_size}), or a full batch would leave no room for prefill")
        if self.max_queue_size < 0:
            raise ValueError(f"max_queue_size must be 0 (unbounded) or more, got {self.max_queue_size}")


@dataclass
class SchedulerStats:
    """Counters since start (read them from any thread; they only grow)."""

    steps: int = 0
    decode_tokens: int = 0
    prefill_tokens: int = 0  # prompt tokens fed through the model, padding included
    shared_prefix_tokens: int = 0  # prompt tokens not fed because a group shared them
    joined: int = 0  # sequences that joined a batch already decoding
    finished: int = 0
    cancelled: int = 0
    steps_after_cancel: int = 0  # steps that ran between cancel() and the request's removal


class Ticket:
    """A submitted request: ``future`` gets its GenerationResult (or the error); ``cancel()`` stops it."""

    def __init__(self, request: GenerationRequest, is_cancelled: Callable[[], bool] | None, wake: Callable[[], None],
                 steps: Callable[[], int]) -> None:
        self.request = request
        self.state = SequenceState(request)
        self.future: Future[GenerationResult] = Future()
        self._is_cancelled = is_cancelled
        self._wake = wake
        self._steps = steps
        self.cancelled_at_step: int | None = None
        self.submitted_at = time.monotonic()

    def cancel(self) -> None:
        """Ask the scheduler to drop this request at its next step (no effect once it has finished)."""
        if self.cancelled_at_step is None:
            self.cancelled_at_step = self._steps()
            self._wake()

    def poll_cancelled(self) -> bool:
        """Whether the caller's own is_cancelled() says so (marks the ticket cancelled)."""
        if self.cancelled_at_step is None and self._is_cancelled is not None:
            try:
                if self._is_cancelled():
                    self.cancelled_at_step = self._steps()
            except Exception:  # a request object that went away: treat as cancelled
                LOGGER.debug("is_cancelled() failed", exc_info=True)
                self.cancelled_at_step = self._steps()
        return self.cancelled_at_step is not None


@dataclass
class _Rows:
    """Sequences sharing one KV cache: the running batch, or a prefill in progress."""

    tickets: list[Ticket]
    cache: DynamicCache
    attention_mask: torch.Tensor  # [rows, width]: 0 where a row has padding
    positions: torch.Tensor  # [rows, 1]: position of each row's last fed token
    next_ids: list[int] = field(default_factory=list)  # the token each row feeds at its next step
    prompt_done: int = 0  # chunked prefill only: prompt tokens already fed

    def select(self, rows: list[int]) -> None:
        """Keep only ``rows`` (in this order) and drop padding columns no remaining row needs."""
        index = torch.tensor(rows, device=self.attention_mask.device)
        self.cache.batch_select_indices(index)
        self.attention_mask, self.positions = self.attention_mask[index], self.positions[index]
        self.tickets = [self.tickets[row] for row in rows]
        self.next_ids = [self.next_ids[row] for row in rows]
        unused = int(self.attention_mask.any(0).int().argmax())  # leading columns that are padding in every row
        if unused:
            self.attention_mask = self.attention_mask[:, unused:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[:, :, unused:], layer.values[:, :, unused:]


def _left_pad(tensor: torch.Tensor, width: int) -> torch.Tensor:
    """Pad the last-but-one (KV) or last (mask) sequence axis on the left with zeros up to ``width``."""
    axis = -2 if tensor.dim() == 4 else -1
    missing = width - tensor.shape[axis]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[axis] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=axis)


def _merge(batch: _Rows | None, joining: _Rows) -> _Rows:
    """Append ``joining``'s rows to ``batch``, aligning both on the right (the newest token)."""
    if batch is None or not batch.tickets:
        return joining
    width = max(batch.attention_mask.shape[1], joining.attention_mask.shape[1])
    for ours, theirs in zip(batch.cache.layers, joining.cache.layers, strict=True):
        ours.keys = torch.cat([_left_pad(ours.keys, width), _left_pad(theirs.keys, width)])
        ours.values = torch.cat([_left_pad(ours.values, width), _left_pad(theirs.values, width)])
    batch.attention_mask = torch.cat([_left_pad(batch.attention_mask, width),
                                      _left_pad(joining.attention_mask, width)])
    batch.positions = torch.cat([batch.positions, joining.positions])
    batch.tickets += joining.tickets
    batch.next_ids += joining.next_ids
    return batch


def _fail(tickets: Sequence[Ticket], error: BaseException) -> None:
    for ticket in tickets:
        if not ticket.future.done():
            ticket.future.set_exception(error)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


class InflightScheduler:
    """Runs a TorchEngine's model with in-flight batching in a background thread (see the module docstring)."""

    def __init__(self, engine: TorchEngine, limits: SchedulerLimits = SchedulerLimits()) -> None:
        self.engine = engine
        self.limits = limits
        self.stats = SchedulerStats()
        self._queue: deque[Ticket] = deque()
        self._lock = threading.Condition()
        self._batch: _Rows | None = None
        self._chunked: _Rows | None = None  # a prompt longer than one step's budget, part-way through prefill
        self._closed = False
        self._last_poll = 0.0
        self._device = engine.device
        self._thread = threading.Thread(target=self._run, name="rank1-inflight", daemon=True)
        self._thread.start()

    @property
    def capabilities(self) -> EngineCapabilities:
        """The engine's capabilities (fused answer step, context) with this scheduler's batch size."""
        return dataclasses.replace(self.engine.capabilities, max_batch_size=self.limits.max_batch_size)

    def submit(self, request: GenerationRequest, is_cancelled: Callable[[], bool] | None = None) -> Ticket:
        """Queue one request (checked first: RequestError names a bad field); EngineQueueFullError when full."""
        self.engine.check(request)
        ticket = Ticket(request, is_cancelled, self._wake, lambda: self.stats.steps)
        with self._lock:
            if self._closed:
                raise RuntimeError("the scheduler is closed")
            if self.limits.max_queue_size and len(self._queue) >= self.limits.max_queue_size:
                raise EngineQueueFullError(self.limits.max_queue_size)
            self._queue.append(ticket)
            self._lock.notify()
        return ticket

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """The Engine interface: submit all, wait for all (results in request order)."""
        tickets = [self.submit(request) for request in requests]
        return [ticket.future.result() for ticket in tickets]

    async def agenerate_one(self, request: GenerationRequest) -> GenerationResult:
        """One request from an event loop; cancelling the awaiting task cancels the request."""
        ticket = self.submit(request)
        try:
            return await asyncio.wrap_future(ticket.future)
        except asyncio.CancelledError:
            ticket.cancel()
            raise

    def close(self) -> None:
        """Stop the thread; requests not finished get RequestCancelledError."""
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._thread.join()

    @property
    def load(self) -> tuple[int, int]:
        """(sequences running or prefilling, requests waiting)."""
        running = len(self._batch.tickets) if self._batch else 0
        running += len(self._chunked.tickets) if self._chunked else 0
        return running, len(self._queue)

    # --- the engine thread ------------------------------------------------------------------------------------

    def _wake(self) -> None:
        with self._lock:
            self._lock.notify()

    def _run(self) -> None:
        with torch.inference_mode():
            while True:
                with self._lock:
                    while not (self._closed or self._queue or self._batch or self._chunked):
                        self._lock.wait()
                    if self._closed:
                        break
                    self._gather()
                try:
                    self._step()
                except Exception as error:  # a failed forward fails the sequences in it, never the thread
                    LOGGER.exception("engine step failed")
                    self._fail_running(error)
        self._fail_running(RequestCancelledError("the engine is shutting down"))
        with self._lock:
            while self._queue:
                _fail([self._queue.popleft()], RequestCancelledError("the engine is shutting down"))

    def _gather(self) -> None:
        """When idle, let a burst of arrivals end so that it shares one prefill (called holding the lock)."""
        if self._batch or self._chunked or not self._queue or not self.limits.join_window_s:
            return
        deadline = self._queue[0].submitted_at + self.limits.join_window_s
        while not self._closed and len(self._queue) < self.limits.max_batch_size:
            wait = min(deadline, self._queue[-1].submitted_at + self.limits.join_gap_s) - time.monotonic()
            if wait <= 0:
                return
            self._lock.wait(wait)

    def _fail_running(self, error: BaseException) -> None:
        for rows in (self._batch, self._chunked):
            _fail(rows.tickets if rows else (), error)
        self._batch = self._chunked = None

    def _step(self) -> None:
        self._drop_cancelled()
        budget = self.limits.max_num_tokens
        if self._batch is not None and self._batch.tickets:
            budget -= len(self._batch.tickets)
            self._decode()
        joining = self._prefill(budget)
        if joining is not None:
            if self._batch is not None and self._batch.tickets:
                self.stats.joined += len(joining.tickets)
            self._batch = _merge(self._batch, joining)
        self.stats.steps += 1

    def _drop_cancelled(self) -> None:
        poll = time.monotonic() - self._last_poll >= self.limits.cancel_poll_s
        if poll:
            self._last_poll = time.monotonic()

        def cancelled(ticket: Ticket) -> bool:
            return ticket.cancelled_at_step is not None or (poll and ticket.poll_cancelled())

        with self._lock:
            for ticket in [t for t in self._queue if cancelled(t)]:
                self._queue.remove(ticket)
                self._finish_cancelled(ticket)
        if self._chunked is not None and cancelled(self._chunked.tickets[0]):
            self._finish_cancelled(self._chunked.tickets[0])
            self._chunked = None
        if self._batch is not None:
            # Decided once per ticket: a stop request may land between two looks, and a ticket finished here must
            # also leave the batch (else the next step would finish it twice).
            dropped = [cancelled(ticket) for ticket in self._batch.tickets]
            if any(dropped):
                for ticket, drop in zip(self._batch.tickets, dropped, strict=True):
                    if drop:
                        self._finish_cancelled(ticket)
                keep = [row for row, drop in enumerate(dropped) if not drop]
                if keep:
                    self._batch.select(keep)
                else:
                    self._batch = None

    def _finish_cancelled(self, ticket: Ticket) -> None:
        self.stats.cancelled += 1
        self.stats.steps_after_cancel += self.stats.steps - (ticket.cancelled_at_step or self.stats.steps)
        ticket.future.set_exception(RequestCancelledError("the engine request was cancelled"))

    def _decode(self) -> None:
        batch = self._batch
        assert batch is not None
        step_ids = torch.tensor([[token] for token in batch.next_ids], device=self._device)
        batch.attention_mask = torch.cat(
            [batch.attention_mask, batch.attention_mask.new_ones((len(batch.tickets), 1))], dim=-1)
        batch.positions = batch.positions + 1
        logits = self.engine.forward(step_ids, batch.attention_mask, batch.positions, batch.cache)
        self.stats.decode_tokens += len(batch.tickets)
        keep = self._advance_rows(batch, logits)
        if not keep:
            self._batch = None
        elif len(keep) < len(batch.tickets):
            batch.select(keep)

    def _advance_rows(self, rows: _Rows, logits: torch.Tensor) -> list[int]:
        """Apply each row's logits; deliver finished rows; the rows that go on (their next token is recorded)."""
        next_ids = logits.argmax(-1).tolist()
        keep = []
        for row, ticket in enumerate(rows.tickets):
            if advance(ticket.state, logits[row], next_ids[row], self.engine.think_end):
                keep.append(row)
            else:
                self.stats.finished += 1
                ticket.future.set_result(ticket.state.result())
        rows.next_ids = next_ids
        return keep

    def _prefill(self, budget: int) -> _Rows | None:
        """Spend up to ``budget`` prompt tokens; the rows whose prefill completed this step (to join the batch)."""
        if budget <= 0:
            return None
        if self._chunked is not None:
            return self._prefill_chunk(budget)
        group, prefix, cost = self._take_group(budget)
        if not group:
            return None
        if len(group) == 1 and cost > budget:  # one prompt longer than the budget: prefill it in chunks
            self._chunked = _Rows(group, DynamicCache(), torch.zeros((1, 0), dtype=torch.long, device=self._device),
                                  torch.zeros((1, 1), dtype=torch.long, device=self._device))
            return self._prefill_chunk(budget)
        try:
            return self._prefill_group(group, prefix)
        except Exception as error:  # these tickets are in neither the queue nor a batch: fail them here
            _fail(group, error)
            raise

    def _take_group(self, budget: int) -> tuple[list[Ticket], int, int]:
        """Waiting requests that fit this step's budget and the batch's free slots, with their shared prefix.

        Returns (tickets, shared prefix length, prompt tokens the prefill will feed). When even the first waiting
        prompt does not fit, it is returned alone (its cost exceeds the budget: the caller chunks it).
        """
        free = self.limits.max_batch_size - (len(self._batch.tickets) if self._batch else 0)
        group: list[Ticket] = []
        prefix = longest = cost = 0
        with self._lock:
            while self._queue and len(group) < free:
                ids = self._queue[0].request.input_ids
                new_prefix = len(ids) if not group else min(prefix, _common_prefix(group[0].request.input_ids, ids))
                new_longest = max(longest, len(ids))
                new_cost = self._group_cost(len(group) + 1, new_prefix, new_longest)
                if group and new_cost > budget:
                    break
                group.append(self._queue.popleft())
                prefix, longest, cost = new_prefix, new_longest, new_cost
                if cost > budget:
                    break
        return group, self._shared(len(group), prefix, longest), cost

    def _shared(self, rows: int, prefix: int, longest: int) -> int:
        """The prefix a group computes once (every row keeps at least one token of its own)."""
        shared = min(prefix, longest - 1)
        if rows < 2 or not self.limits.min_shared_prefix or shared < self.limits.min_shared_prefix:
            return 0
        return shared

    def _group_cost(self, rows: int, prefix: int, longest: int) -> int:
        shared = self._shared(rows, prefix, longest)
        return shared + rows * (longest - shared)

    def _prefill_group(self, group: list[Ticket], shared: int) -> _Rows | None:
        """One forward over the group's prompts (left-padded after the shared prefix); the rows that go on."""
        cache = DynamicCache()
        prefix_mask = torch.ones((len(group), shared), dtype=torch.long, device=self._device)
        if shared:  # the prefix once, then its KV rows repeated for every member
            prefix_ids = torch.tensor([group[0].request.input_ids[:shared]], device=self._device)
            prefix_positions = torch.arange(shared, device=self._device)[None]
            self.engine.forward(prefix_ids, prefix_mask[:1], prefix_positions, cache)
            cache.batch_repeat_interleave(len(group))
            self.stats.prefill_tokens += shared
            self.stats.shared_prefix_tokens += shared * (len(group) - 1)
        suffixes = [ticket.request.input_ids[shared:] for ticket in group]
        width = max(len(s) for s in suffixes)
        input_ids = torch.zeros((len(group), width), dtype=torch.long)
        suffix_mask = torch.zeros((len(group), width), dtype=torch.long)
        for row, (ticket, suffix) in enumerate(zip(group, suffixes, strict=True)):
            padding = width - len(suffix)
            input_ids[row, :padding] = ticket.request.pad_id
            input_ids[row, padding:] = torch.tensor(suffix, dtype=torch.long)
            suffix_mask[row, padding:] = 1
        attention_mask = torch.cat([prefix_mask, suffix_mask.to(self._device)], dim=-1)
        positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
        logits = self.engine.forward(input_ids.to(self._device), attention_mask, positions, cache)
        self.stats.prefill_tokens += len(group) * width
        rows = _Rows(group, cache, attention_mask, positions[:, -1:])
        return self._joining(rows, logits)

    def _prefill_chunk(self, budget: int) -> _Rows | None:
        """The next ``budget`` tokens of the chunked prompt; the row once its prompt is complete."""
        rows = self._chunked
        assert rows is not None
        ids = rows.tickets[0].request.input_ids
        start, end = rows.prompt_done, min(rows.prompt_done + budget, len(ids))
        rows.attention_mask = torch.ones((1, end), dtype=torch.long, device=self._device)
        positions = torch.arange(start, end, device=self._device)[None]
        logits = self.engine.forward(torch.tensor([ids[start:end]], device=self._device), rows.attention_mask,
                                     positions, rows.cache)
        self.stats.prefill_tokens += end - start
        rows.prompt_done, rows.positions = end, positions[:, -1:]
        if end < len(ids):
            return None
        self._chunked = None
        return self._joining(rows, logits)

    def _joining(self, rows: _Rows, logits: torch.Tensor) -> _Rows | None:
        keep = self._advance_rows(rows, logits)
        if not keep:
            return None
        if len(keep) < len(rows.tickets):
            rows.select(keep)
        return rows
