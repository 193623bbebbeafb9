"""The error the build tool raises when it refuses a request."""


class BuildRefusal(ValueError):
    """A build that the pinned release cannot produce, or that would serve wrong scores; the message says why."""
