"""Sending a request's one response through its response sender (both models answer outside ``execute``)."""

from __future__ import annotations

import logging
from types import ModuleType

LOGGER = logging.getLogger("rank1_triton.responses")


def send_final(pb_utils: ModuleType, sender, response) -> None:
    """Send ``response`` as the request's final one; a caller that went away (closed sender) is only logged."""
    try:
        sender.send(response, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
    except Exception:  # the caller went away and its sender is closed: nothing left to tell it
        LOGGER.warning("could not send a response", exc_info=True)
