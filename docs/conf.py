"""Sphinx configuration for the gpipe documentation.

Build with ``tox -e docs``, or by hand from the repository root::

    sphinx-build -W --keep-going -b html docs docs/_build/html
    sphinx-build -W -b doctest docs docs/_build/doctest

gpipe must be installed (``pip install -e .``): the examples test the
package that is installed, as their subprocesses do. Nothing here
fetches anything at build time: no intersphinx.
"""

import doctest
import os
import re

from gpipe import __version__

project = "gpipe"
author = "The gpipe authors"
copyright = "the gpipe authors"
release = __version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "repoze.sphinx.autointerface",
]

# Fragments that other pages include: not pages of their own.
exclude_patterns = ["_build", "bad_input.rst", "benchmark_table.rst"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_preserve_defaults = True

# Every example in the documentation is a test: ``sphinx-build -b doctest``.
# Exception messages are part of what the examples check, so unlike Sphinx's
# default, IGNORE_EXCEPTION_DETAIL is off.
doctest_default_flags = doctest.ELLIPSIS | doctest.DONT_ACCEPT_TRUE_FOR_1
#
# Some examples' producers fail on purpose, and the example shows the reader
# raising that error. gevent's hub would also print the failed greenlet's
# traceback, which reads like a failing test in the doctest log: the hub
# reports nothing here, and the examples' own output says what happened.
doctest_global_setup = f"""
import gevent
import gpipe

gevent.get_hub().exception_stream = None  # failures on purpose: see conf.py

DOCS = {os.path.dirname(os.path.abspath(__file__))!r}  # this directory
"""

html_theme = "alabaster"
html_static_path = ["_static"]
html_theme_options = {
    "description": "Go's io.Pipe for gevent",
    "fixed_sidebar": True,
}


# The compiled build's methods (Cython's embedsignature) start their
# docstrings with "Class.method(self, ...) -> type"; api.rst gives the
# signatures of those methods itself, the same for both builds.
_EMBEDDED = re.compile(r"^\w+\.\w+\(.*\)( -> .+)?$")


def _drop_embedded_signature(app, what, name, obj, options, lines):
    if len(lines) > 1 and _EMBEDDED.match(lines[0]) and not lines[1].strip():
        del lines[:2]


def setup(app):
    app.connect("autodoc-process-docstring", _drop_embedded_signature)
