"""CSV cells that a spreadsheet cannot run: the one writer for every CSV the product writes.

Job statuses, sites and actor names come from the grid and from users. A cell starting with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to Excel, LibreOffice and
Google Sheets (``=HYPERLINK(...)``, ``=cmd|' /C calc'!A0``). As OWASP recommends, such a text cell
is written with a single quote in front: the spreadsheet shows the text as it was (the quote is
hidden or visible, never run), and a program reading the CSV can strip one leading quote.

Only text is neutralised. Numbers the product computes (counts, ids) are written as numbers, so
a negative count stays ``-2`` and sums in a spreadsheet still work; a text that merely looks like
a negative number (a MinorStatus "-2") is grid text and gets its quote like any other.
"""

from __future__ import annotations

import csv

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """``value`` as it may go into a CSV cell (text starting like a formula gets a leading ``'``)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeWriter:
    """``csv.writer`` whose rows go through :func:`safe_cell`."""

    def __init__(self, out, **kwargs):
        self._writer = csv.writer(out, **kwargs)
        # Python's csv quotes a cell only for the characters of its own line terminator: with "\n",
        # a carriage return inside a cell is written bare and splits the row in every reader. Such
        # a cell gets "\n" instead, which is quoted.
        self._bare_cr = "\r" not in self._writer.dialect.lineterminator

    def writerow(self, row):
        cells = [safe_cell(v) for v in row]
        if self._bare_cr:
            cells = [c.replace("\r\n", "\n").replace("\r", "\n") if isinstance(c, str) else c for c in cells]
        return self._writer.writerow(cells)

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def writer(out, **kwargs) -> SafeWriter:
    return SafeWriter(out, **kwargs)
