"""The pages' prose: sections of the Markdown templates in ``templates/`` (package data).

A template file holds sections, each starting with a marker line ``@@ name``; :func:`say`
fills one section's ``${name}`` placeholders (:class:`string.Template`).
"""

from __future__ import annotations

import re
import string
from functools import lru_cache
from importlib import resources

__all__ = ["say"]

_MARKER = re.compile(r"^@@ (\w+)\n", re.MULTILINE)


@lru_cache(maxsize=None)
def sections(filename):
    """``{name: Template}`` of ``templates/<filename>`` (each without its last newline)."""
    text = resources.files(__package__).joinpath("templates", filename).read_text("utf-8")
    pieces = _MARKER.split(text)[1:]  # name, body, name, body, ...
    out = {}
    for name, body in zip(pieces[::2], pieces[1::2]):
        out[name] = string.Template(body[:-1] if body.endswith("\n") else body)
    return out


def say(filename, section, /, **values):
    """The section ``section`` of ``templates/<filename>`` with ``values`` filled in.

    Examples
    --------
    >>> from skct.experiments._templates import say
    >>> say("reproduction.md", "protocol_row", item="x", reference="a", skct="b")
    '| `x` | a | b |'
    """
    return sections(filename)[section].substitute(values)
