"""The documentation site builds with warnings as errors (``mkdocs build --strict``, what
``make docs`` runs) and its pages hold what they promise: every command of the CLI, every
derivation of the maths page."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs")
pytest.importorskip("material")
pytest.importorskip("mkdocstrings_handlers.python")
pytest.importorskip("mkdocs_click")

ROOT = Path(__file__).resolve().parent.parent

MATHS_MODULES = ("recsys.kernels.cpu.sgd", "recsys.kernels.cpu.wals", "recsys.kernels.cpu.svdpp",
                 "recsys.kernels.cpu.funk", "recsys.kernels.cpu.gd", "recsys.models.foldin",
                 "recsys.training.autoreg", "recsys.training.strata")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "site"
    # this checkout's recsys, whatever else is installed
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                           "--site-dir", str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_every_page_is_built(site):
    for page in ("index.html", "cli/index.html", "maths/index.html", "benchmarks/index.html",
                 "results/index.html", "coming-from/index.html", "learning-curves.png",
                 *(f"api/{name}/index.html" for name in ("recsys", "models", "split",
                                                         "evaluation", "sklearn", "training",
                                                         "testing"))):
        assert (site / page).is_file(), page


def test_the_cli_page_lists_every_command(site):
    from recsys.cli import main

    page = (site / "cli" / "index.html").read_text(encoding="utf-8")
    missing = [name for name in main.commands if f'id="recsys-{name}"' not in page]
    assert not missing, f"commands missing from the CLI page: {missing}"


def test_the_maths_page_shows_every_derivation(site):
    page = (site / "maths" / "index.html").read_text(encoding="utf-8")
    missing = [name for name in MATHS_MODULES if f'id="{name}"' not in page]
    assert not missing, f"module docstrings missing from the maths page: {missing}"
    assert "∂ℓ/∂p_u" in page  # the docstring's text itself, not only a heading


def test_the_api_pages_show_real_defaults(site):
    page = (site / "api" / "recsys" / "index.html").read_text(encoding="utf-8")
    # inspected, not read as source, where FunkSVD's defaults are _D["n_factors"] ...
    assert '<span class="mi">200</span>' in page and "_D" not in page
