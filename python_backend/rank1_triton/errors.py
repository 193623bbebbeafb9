"""The error a caller can fix: a bad request field, named in ``field``."""

from __future__ import annotations


class RequestError(ValueError):
    """A request field that cannot be served as given; the message starts with the field's name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
