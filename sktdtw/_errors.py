"""The error that marks a problem with the user's input rather than in sktdtw, and the
warning that marks input that works but is likely a mistake."""

import sys
import warnings

__all__ = ["InputError", "InputWarning", "warn_input"]


class InputError(ValueError):
    """Invalid input: data, files or arguments, named in the message.

    A ``ValueError``, so that callers catching ``ValueError`` see no difference; the
    command line reports it as one line with exit status 2, where any other ``ValueError``
    is a bug shown with its traceback.
    """


class InputWarning(UserWarning):
    """Input that is valid but likely a mistake (e.g. a parameter far beyond the data),
    named in the message with what to do instead."""


def warn_input(message):
    """An InputWarning shown at the first caller outside sktdtw and scikit-learn: the
    user's line, however deep the check that found the problem."""
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] in (
        "sktdtw", "sklearn",
    ):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, InputWarning, stacklevel=level)
