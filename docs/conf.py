"""Sphinx configuration for the varinf documentation.

Build (one command, offline, warnings are errors)::

    python -m sphinx -W -b html docs docs/_build/html

Every example in ``examples/`` is executed by sphinx-gallery during the build; its figures and printed
output come from that run. Intersphinx inventories are never downloaded (the build machines have no
internet): ``_ext/inventories.py`` supplies them from files on this machine.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "_ext"))
if (ROOT / "src" / "varinf").is_dir():  # a checkout: document its sources, not an older installed copy
    sys.path.insert(0, str(ROOT / "src"))

# The examples run in this process: one thread (the build is sized for one core; two intra-op threads on a
# busy machine spin against each other and run several times slower).
os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
import varinf  # noqa: E402

project = "varinf"
author = "the varinf developers"
copyright = "varinf developers"
release = version = varinf.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_gallery.gen_gallery",
    "inventories",  # offline intersphinx inventories (before intersphinx loads them)
    "cli_reference",  # .. varinf-cli:: the argparse parsers rendered as the CLI reference
    "results_tables",  # .. varinf-results:: tables generated from benchmarks/results/*.json
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.json", "auto_examples/*.md5"]
root_doc = "index"

# -- HTML ---------------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"varinf {release}"
html_static_path = ["_static"]
html_css_files = ["varinf.css"]
html_favicon = "_static/favicon.svg"
html_show_sourcelink = False
html_theme_options = {"sidebar_hide_name": False, "navigation_with_keys": True}

# -- autodoc / autosummary / napoleon -----------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False
autodoc_class_signature = "mixed"
napoleon_google_docstring = True
napoleon_numpy_docstring = True
napoleon_use_rtype = False
suppress_warnings = [
    # Docstrings written for the terminal (markdown-ish tables, ASCII dataflow) are shown as they are;
    # duplicate object descriptions arise where a name is re-exported from several packages.
    "autosummary.import_cycle",
]

# -- intersphinx: offline inventories -----------------------------------------------------------------
intersphinx_mapping = {}  # filled by _ext/inventories.py from local files (see that module)
intersphinx_timeout = 1
intersphinx_cache_limit = -1

# -- sphinx-gallery -----------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": [str(ROOT / "examples")],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",  # every plot_*.py is executed; others are shown only
    "ignore_pattern": r"__init__\.py|_helpers\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 1,
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "within_subsection_order": "gallery_order.ExampleOrder",
    "reset_modules": ("matplotlib", "seaborn"),
    # the execution-times pages load jQuery and DataTables from a CDN: not on an offline site
    "write_computation_times": False,
}

warnings.filterwarnings("ignore", message=".*ArviZ is undergoing a major refactor.*", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning, message="Matplotlib is currently using agg")

# -- MathJax, served from this site ---------------------------------------------------------------------
# Debian's libjs-mathjax (MathJax 2.7; `.ci/run` installs it with Chromium): the parts the CommonHTML
# output needs are copied into _static/mathjax, so pages with math load nothing from the internet.
MATHJAX = Path("/usr/share/javascript/mathjax")
MATHJAX_PARTS = ["MathJax.js", "config/TeX-AMS_CHTML.js", "extensions", "jax/input/TeX", "jax/output/CommonHTML",
                 "jax/element", "fonts/HTML-CSS/TeX/woff", "localization/en"]
if (MATHJAX / "MathJax.js").is_file():
    mathjax_path = "mathjax/MathJax.js?config=TeX-AMS_CHTML"


def _copy_mathjax(app, exception):
    import shutil

    if exception is not None or app.builder.format != "html" or not (MATHJAX / "MathJax.js").is_file():
        return
    dest = Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        src, out = MATHJAX / part, dest / part
        if src.is_dir():
            shutil.copytree(src, out, dirs_exist_ok=True)
        elif src.is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out)


def _write_favicon_ico(app, exception):
    """Browsers ask for /favicon.ico whatever the pages link to; draw one at build time (no image in git)."""
    if exception is not None or app.builder.format != "html":
        return
    from PIL import Image, ImageDraw

    icon = Image.new("RGBA", (32, 32), (43, 91, 132, 255))
    draw = ImageDraw.Draw(icon)
    draw.ellipse((8, 7, 22, 21), outline="white", width=3)  # a "q": a bowl and a descender
    draw.line((21, 12, 21, 29), fill="white", width=3)
    icon.save(Path(app.outdir) / "favicon.ico", sizes=[(32, 32)])


def _data_docstring(app, what, name, obj, options, lines):
    """Module-level constants re-exported by a package have no docstring of their own: autodoc would show
    their type's (``dict()`` -> new empty dictionary ...). Say what the value is instead."""
    if what != "data" or not lines or type(obj).__doc__ is None:
        return
    if "\n".join(lines).strip() != (type(obj).__doc__ or "").strip() and not "\n".join(lines).strip().startswith(
        (type(obj).__doc__ or "").strip()[:40]
    ):
        return
    lines.clear()
    if isinstance(obj, dict):
        keys = ", ".join(f"``{k!r}``" for k in list(obj)[:40])
        lines.append(f"A ``dict`` of {len(obj)} entries, keyed by {keys}{', ...' if len(obj) > 40 else ''}.")
    elif isinstance(obj, frozenset | set | tuple | list):
        items = sorted(map(str, obj))[:30]
        more = ", ..." if len(obj) > 30 else ""
        lines.append(f"A ``{type(obj).__name__}`` of {len(obj)} items: {', '.join(f'``{i}``' for i in items)}{more}.")
    else:
        lines.append(f"``{obj!r}``")


def setup(app):
    app.connect("build-finished", _copy_mathjax)
    app.connect("build-finished", _write_favicon_ico)
    app.connect("autodoc-process-docstring", _data_docstring)
