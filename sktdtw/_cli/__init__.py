"""The ``sktdtw`` command line: the parser and ``main`` (:mod:`~sktdtw._cli.parser`), and
the work of each command, imported when it runs (:mod:`~sktdtw._cli.demo`,
:mod:`~sktdtw._cli.store_commands`, :mod:`~sktdtw._cli.encode_command`, with the ``fit``
options of :mod:`~sktdtw._cli.estimator_options`)."""

from .parser import main

__all__ = ["main"]
