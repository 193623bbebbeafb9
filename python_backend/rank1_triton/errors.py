"""Errors a request can end with: a bad field (named in ``field``), or the caller giving up."""

from __future__ import annotations


class RequestError(ValueError):
    """A request field that cannot be served as given; the message starts with the field's name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class RequestCancelledError(RuntimeError):
    """The caller cancelled the request (or its deadline passed); the remaining engine work was skipped."""
