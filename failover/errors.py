"""The domain's errors: one small hierarchy, mapped to clear messages at the edges (CLI, web)."""

from __future__ import annotations


class FailoverError(Exception):
    """Base of every error this product raises on purpose; its message is for users."""


class ConfigurationError(FailoverError):
    """A policy, configuration file or setting is not valid."""


class ScenarioError(FailoverError):
    """A simulated-DIRAC scenario is not valid; the message names the place."""


class UnknownTransformation(FailoverError):
    def __init__(self, transformation_id: int | str):
        super().__init__(f"transformation {transformation_id} does not exist")
        self.transformation_id = transformation_id


class BackendError(FailoverError):
    """DIRAC (real or simulated) answered with an error (OK: False) or could not be reached."""

    def __init__(self, message: str, *, call: str = "", retriable: bool = True):
        super().__init__(f"{call}: {message}" if call else message)
        self.call = call
        self.dirac_message = message
        self.retriable = retriable


class BackendTimeout(BackendError):
    """A call to DIRAC did not answer in time. Whether it took effect is unknown."""


class StaleProposal(FailoverError):
    """A proposed action's preconditions no longer hold."""


class DuplicateRequest(FailoverError):
    """The same operator request (form submit) arrived twice; it was carried out once."""
