"""The epoch table printed with ``verbose=1``: skorch's, coloured only on a terminal."""

from __future__ import annotations

import os
import sys

from skorch.callbacks import PrintLog

__all__ = ["EpochLog"]


def _colour_wanted(sink):
    """ANSI colours only when printing to a terminal (and ``NO_COLOR`` is not set)."""
    if sink is not print or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


class EpochLog(PrintLog):
    """skorch's ``PrintLog`` without ANSI colour codes when the output is not a terminal.

    skorch highlights the best value of a column with colour codes, which show up as
    ``\\x1b[36m`` in log files, notebooks' captured output and pipes. Parameters as in
    ``skorch.callbacks.PrintLog``.

    Examples
    --------
    >>> log = EpochLog().initialize()
    >>> log.format_row({"train_loss": 0.5, "train_loss_best": True}, "train_loss", "\\x1b[36m")
    '0.5000'
    """

    def format_row(self, row, key, color):
        if _colour_wanted(self.sink):
            return super().format_row(row, key, color)
        return super().format_row({key: row[key]}, key, color)  # no "<key>_best": no colour
