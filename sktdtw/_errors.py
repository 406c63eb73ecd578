"""The error that marks a problem with the user's input rather than in sktdtw."""

__all__ = ["InputError"]


class InputError(ValueError):
    """Invalid input: data, files or arguments, named in the message.

    A ``ValueError``, so that callers catching ``ValueError`` see no difference; the
    command line reports it as one line with exit status 2, where any other ``ValueError``
    is a bug shown with its traceback.
    """
