"""Errors of :mod:`skct.io`."""

from __future__ import annotations

__all__ = ["UnsafeFileError", "UntrustedTypeError"]


class UnsafeFileError(ValueError):
    """The file is not a valid, untampered skct.io file; nothing from it was executed."""


class UntrustedTypeError(UnsafeFileError, TypeError):
    """The file needs a class (or function) that is not trusted.

    Attributes
    ----------
    names : list of str
        The untrusted names, as ``"module:qualname"``.
    """

    def __init__(self, message, names=()):
        super().__init__(message)
        self.names = list(names)
