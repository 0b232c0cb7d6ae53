"""Sphinx configuration of the course site (built by scripts/build_site.py, never by hand).

The sources are a staging folder that mirrors the repository: ``docs/`` (the pages; ``docs/index``
is the landing page) and ``notebooks/`` (the *executed* notebooks from ``make run``). MyST-NB
renders the notebooks as they are: nothing is executed here. The repository's address comes from
pyproject.toml (``make colab REPO=owner/name`` sets it).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from colab import read_location, repo_url  # noqa: E402

REPO, BRANCH = read_location(ROOT)

project = "CA²-SIS course"
author = "ca2sis contributors"
root_doc = "docs/index"
extensions = ["myst_nb", "sphinx-mathjax-offline"]  # MathJax from the package: the site works offline
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
nb_execution_mode = "off"  # the notebooks were executed by `make run`; the site only renders them
nb_ipywidgets_js = {}  # widget outputs are replaced by a note: no widget JavaScript from a CDN
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
suppress_warnings = ["mystnb.unknown_mime_type", "misc.highlighting_failure"]

html_theme = "sphinx_book_theme"
html_title = "CA²-SIS: a course"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_favicon = "_static/favicon.svg"  # else the browser asks for /favicon.ico and gets a 404
html_context = {"default_mode": "light"}
html_last_updated_fmt = ""
html_theme_options = {
    "repository_url": repo_url(REPO),
    "repository_branch": BRANCH,
    "use_repository_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "path_to_docs": "",
    "home_page_in_toc": True,
    "show_toc_level": 2,
}
