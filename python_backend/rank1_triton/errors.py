"""Every error the server library raises on purpose, in one tree.

::

    Rank1TritonError
    ├── RequestError            a request field cannot be served as given (INVALID_ARGUMENT; ``field`` names it)
    │   └── PromptTooLongError  the prompt does not fit the context next to the reasoning budget
    ├── RequestCancelledError   the caller cancelled (or its deadline passed); remaining engine work skipped
    ├── EngineCallError         the engine model answered with an error (``unavailable``: overloaded or reloading)
    ├── EngineQueueFullError    the PyTorch engine's queue of waiting requests is full (UNAVAILABLE: retry)
    ├── TemplateError           a model-repository template and its values disagree
    ├── ServerStartError        tritonserver could not start; the message says why and what to do
    └── ModelNotAvailableError  a checkpoint is neither a local folder nor downloadable
"""

from __future__ import annotations


class Rank1TritonError(Exception):
    """Base of the library's own errors."""


class RequestError(Rank1TritonError, ValueError):
    """A request field that cannot be served as given; the message starts with the field's name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class PromptTooLongError(RequestError):
    """The prompt cannot fit the model's context with the requested reasoning budget."""


class RequestCancelledError(Rank1TritonError):
    """The caller cancelled the request (or its deadline passed); the remaining engine work was skipped."""


class EngineCallError(Rank1TritonError):
    """The engine model answered with an error; ``unavailable`` when it is overloaded, reloading or going away."""

    def __init__(self, message: str, *, unavailable: bool) -> None:
        super().__init__(message)
        self.unavailable = unavailable


class EngineQueueFullError(Rank1TritonError):
    """The in-flight scheduler's queue holds ``max_queue_size`` requests; the message is Triton's queue-full one."""

    def __init__(self, max_queue_size: int) -> None:
        super().__init__(f"Exceeds maximum queue size: {max_queue_size} engine requests are waiting")


class TemplateError(Rank1TritonError):
    """A ``${name}`` of a model-repository template has no value, or a value has no field."""


class ServerStartError(Rank1TritonError):
    """tritonserver could not start; the message says why and what to do."""


class ModelNotAvailableError(Rank1TritonError):
    """The model is neither a local folder nor downloadable from here."""
