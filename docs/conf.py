"""Sphinx configuration of the skct documentation.

Build (from the repository root; it executes the gallery, so it takes a few minutes)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # import the checkout's skct even without an install

import skct  # noqa: E402

# -- project -------------------------------------------------------------------------------
project = "skct"
author = "skct developers"
copyright = "skct developers"
version = release = skct.__version__

# -- general -------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    # MathJax 3 copied into the built site (_static/mathjax) instead of loaded from a CDN, so
    # formulas render on a machine without network; rendering stays in the browser, so the
    # build needs no LaTeX installation (sphinx.ext.imgmath would).
    "sphinx-mathjax-offline",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "README.md",  # how to build these docs (for people browsing the repository)
    "examples",  # gallery sources; sphinx-gallery renders them into auto_examples/
]
# no network during the build: no intersphinx; unresolved references are not errors
nitpicky = False
default_role = "literal"  # `x` in docstrings renders as code
pygments_style = "sphinx"
suppress_warnings = [
    # results.md is written by benchmarks/reproduce.py; its headings may start at any level
    "myst.header",
]

# -- autodoc / autosummary / numpydoc ------------------------------------------------------
# autosummary writes one page per object into gen_modules/; remove the pages of an earlier
# build first, so that a renamed or removed object cannot leave an orphan page behind
for _stale in (DOCS / "gen_modules").glob("*.rst"):
    _stale.unlink()
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": False}
autodoc_typehints = "none"  # the numpydoc sections describe the types
autodoc_class_signature = "mixed"
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- MyST (results.md) ---------------------------------------------------------------------
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

# -- sphinx-gallery ------------------------------------------------------------------------
# The examples really run during the build (about a minute on two CPU cores); torch uses one
# thread inside skct by default (see skct.set_config).
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings("ignore", category=UserWarning,
                        message="Matplotlib is currently using agg")
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("skct",),
    "backreferences_dir": "gen_modules/backreferences",
    "reference_url": {"skct": None},
    "remove_config_comments": True,
    "write_computation_times": False,
    "show_memory": False,
    "min_reported_time": 1,
    "abort_on_example_error": False,
    "thumbnail_size": (400, 300),
}

# -- HTML ----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skct {release}"
html_static_path = ["_static"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": True,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}


# -- references to re-exported names -------------------------------------------------------
# The API reference documents a name once, where users import it from: ``skct.evaluate``
# rather than ``skct.evaluation.evaluate``. Docstrings may use either spelling; this resolves
# the module path (and its members, e.g. ``skct.evaluation.RecourseAuditReport.plot``) to the
# documented name.


def _reexport_aliases():
    import importlib
    import pkgutil

    aliases = {}
    for info in pkgutil.walk_packages(skct.__path__, prefix="skct."):
        if info.name.rsplit(".", 1)[-1].startswith("_") or info.name in {"skct.demo",
                                                                         "skct.__main__"}:
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception:  # an optional dependency missing: nothing to alias there
            continue
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name, None)
            if obj is not None and name in skct.__all__ and getattr(skct, name) is obj:
                aliases[f"{info.name}.{name}"] = f"skct.{name}"
    for name in skct.__all__:  # the defining module, e.g. skct.search.generators.ecco
        obj = getattr(skct, name)
        module = getattr(obj, "__module__", None)
        if module and module != "skct" and hasattr(obj, "__qualname__"):
            aliases[f"{module}.{obj.__qualname__}"] = f"skct.{name}"
    return aliases


_ALIASES = _reexport_aliases()


def _resolve_reexport(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    modname, clsname = node.get("py:module"), node.get("py:class")
    candidates = [target]
    if modname:
        candidates.append(f"{modname}.{target}")
        if clsname:
            candidates.append(f"{modname}.{clsname}.{target}")
    for full in candidates:
        for alias, documented in _ALIASES.items():
            if full == alias or full.startswith(alias + "."):
                new_target = documented + full[len(alias):]
                return env.domains["py"].resolve_xref(
                    env, node["refdoc"], app.builder, node["reftype"], new_target, node,
                    contnode)
    return None


# -- the API reference is complete ---------------------------------------------------------
# Every name in the ``__all__`` of these modules must appear in an ``autosummary`` of api.rst
# (a re-exported name under ``skct.<name>``); a missing one is a warning, so ``-W`` fails.
API_MODULES = ["skct", "skct.constraints", "skct.search", "skct.search.generators",
               "skct.search.generators.eccco", "skct.losses", "skct.training", "skct.explain",
               "skct.metrics", "skct.evaluation", "skct.plotting", "skct.datasets",
               "skct.experiments", "skct.io"]


def _autosummary_entries(path):
    import re

    documented, current, inside = set(), None, False
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\.\. currentmodule:: (\S+)", line)
        if match:
            current, inside = match.group(1), False
        elif line.startswith(".. autosummary::"):
            inside = True
        elif inside and line.strip() and not line.startswith(" "):
            inside = False
        elif inside and line.strip() and not line.strip().startswith(":"):
            documented.add(f"{current}.{line.strip()}")
    return documented


def _check_api_complete(app):
    import importlib

    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    documented = _autosummary_entries(DOCS / "api.rst")
    for modname in API_MODULES:
        module = importlib.import_module(modname)
        for name in getattr(module, "__all__", []):
            full = f"{modname}.{name}"
            if name == "__version__" or full in documented or _ALIASES.get(full) in documented:
                continue
            logger.warning("%s is public (in %s.__all__) but missing from docs/api.rst", full,
                           modname, location=str(DOCS / "api.rst"))


def setup(app):
    app.connect("missing-reference", _resolve_reexport)
    app.connect("builder-inited", _check_api_complete)
