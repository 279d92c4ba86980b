"""Errors a user can act on.

Every failure caused by input (a file, a name, an option, the platform) raises a subclass of ``GoatPoseError`` whose
message is one line that says what is wrong and what to do. The CLI prints that line and exits non-zero; anything
else escaping is a bug and is reported as such.
"""


class GoatPoseError(Exception):
    """Base class: a problem with the user's input or platform, explained in one line."""


class UnknownModelError(GoatPoseError, KeyError):
    """A model name that is not in the variant table."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CheckpointError(GoatPoseError):
    """A checkpoint that is missing, unreadable, or does not fit the model."""


class ContractError(GoatPoseError, ValueError):
    """A model contract that is missing or malformed."""


class DependencyError(GoatPoseError, ImportError):
    """An optional package that the requested step needs is not installed."""
