"""CSV outputs that are safe to open in a spreadsheet.

Ids, labels and error messages come from the user's files; a cell such as
``=HYPERLINK(...)`` or ``+cmd|' /C calc'!A0`` would be run as a formula by a spreadsheet
that opens the file (CSV injection). As OWASP recommends, a cell starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return is written with a leading single quote, which
spreadsheets show as text. A cell that is a plain decimal number (``-1``, ``+2.5``,
``-3e-05``) is left as it is: a spreadsheet reads it as that number, running nothing, and
numeric labels and probabilities stay numbers for every other reader.
"""

import csv
import re

__all__ = ["spreadsheet_safe", "write_csv"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_safe(cell):
    """``cell`` as text, prefixed with ``'`` when a spreadsheet would read it as a formula.

    Examples
    --------
    >>> from sktdtw._csv import spreadsheet_safe
    >>> [spreadsheet_safe(c) for c in ("=1+2", "@SUM(A1)", "-1", -2, "-1+2", "walk")]
    ["'=1+2", "'@SUM(A1)", '-1', '-2', "'-1+2", 'walk']
    """
    text = str(cell)
    if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def write_csv(fp, rows):
    """Write ``rows`` (iterables of cells) to the text file ``fp``, every cell made
    :func:`spreadsheet_safe`."""
    csv.writer(fp).writerows([spreadsheet_safe(cell) for cell in row] for row in rows)
