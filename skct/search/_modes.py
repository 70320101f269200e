"""Which implementation of the fast search skct may use: ``$SKCT_COMPILED_SEARCH`` and the
``fast_search`` setting, read in one place.

- ``mode()``: "off" (``0``/``false``/``no``/``off``: the eager engine runs every search),
  "native" (the default: native code where it applies), "steps" (the per-step chain, its
  native loops included), "aten" (torch operations only, no native code) or "compile" (the
  chain step compiled by ``torch.compile``);
- ``native_allowed()``: whether skct may build and load its native code for this call: the
  ``fast_search`` setting is on (``skct.set_config(fast_search=False)`` and
  ``SKCT_FAST_SEARCH=0`` keep every search on torch operations, as the eager engine's results
  were made) and the mode is not "off" or "aten".
"""

from __future__ import annotations

import os

from .._config import get_config

__all__ = ["mode", "native_allowed"]

_MODES = {"0": "off", "false": "off", "no": "off", "off": "off", "compile": "compile",
          "aten": "aten", "steps": "steps"}


def mode():
    """"off", "native" (the default), "steps", "aten" or "compile", from
    ``$SKCT_COMPILED_SEARCH`` (anything else reads as "native")."""
    value = os.environ.get("SKCT_COMPILED_SEARCH", "native").strip().lower()
    return _MODES.get(value, "native")


def native_allowed():
    """Whether native code may run for the calling thread's searches (see the module)."""
    return bool(get_config()["fast_search"]) and mode() not in ("off", "aten")
