"""The error that marks a problem with the user's input rather than in sktdtw, and the
warning that marks input that works but is likely a mistake."""

__all__ = ["InputError", "InputWarning"]


class InputError(ValueError):
    """Invalid input: data, files or arguments, named in the message.

    A ``ValueError``, so that callers catching ``ValueError`` see no difference; the
    command line reports it as one line with exit status 2, where any other ``ValueError``
    is a bug shown with its traceback.
    """


class InputWarning(UserWarning):
    """Input that is valid but likely a mistake (e.g. a parameter far beyond the data),
    named in the message with what to do instead."""
