"""LIBMF built from source with AVX and OpenMP, for benchmarks: download, build, load, time.

The PyPI ``libmf`` package is a ctypes wrapper (``libmf/mf.py``) around LIBMF's C++ sources;
it loads the shared library named by the ``LIBMF_OBJ`` environment variable, else the one
pip built next to it (compiled without AVX). ``build()`` fetches the source distribution
with ``pip download --no-binary :all: --no-deps libmf``, compiles ``src_cpp/*.cpp`` with
``g++ -O3 -march=native -DUSEAVX -DUSEOMP -fopenmp -shared -fPIC`` into a cache directory
outside the repository, and ``load()`` imports that copy of the wrapper with ``LIBMF_OBJ``
pointing at the AVX build.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

CXXFLAGS = ["-O3", "-march=native", "-DUSEAVX", "-DUSEOMP", "-fopenmp", "-shared", "-fPIC",
            "-std=c++11"]


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "recsys-bench" / "libmf-avx"


class Unavailable(Exception):
    """LIBMF-AVX cannot be built here; the message says why."""


def build(directory: Path | None = None) -> tuple[Path, Path]:
    """(wrapper mf.py, AVX shared library), downloading and compiling on first use."""
    directory = directory or cache_dir()
    library = directory / "libmf_avx.so"
    wrappers = sorted(directory.glob("libmf-*/libmf/mf.py"))
    if library.is_file() and wrappers:
        return wrappers[-1], library
    compiler = shutil.which(os.environ.get("CXX", "g++"))
    if compiler is None:
        raise Unavailable("no C++ compiler (g++) on PATH")
    directory.mkdir(parents=True, exist_ok=True)
    if not sorted(directory.glob("libmf-*.tar.gz")):
        done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-binary",
                               ":all:", "--no-deps", "libmf", "-d", str(directory)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise Unavailable(f"pip download libmf failed: {done.stderr.strip()[-300:]}")
    archive = sorted(directory.glob("libmf-*.tar.gz"))[-1]
    with tarfile.open(archive) as tar:
        tar.extractall(directory, filter="data")
    source = directory / archive.name[: -len(".tar.gz")]
    sources = [str(p) for p in sorted((source / "src_cpp").glob("*.cpp"))]
    partial = library.with_suffix(".so.partial")
    done = subprocess.run([compiler, *CXXFLAGS, *sources, "-o", str(partial)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise Unavailable(f"compiling LIBMF failed: {done.stderr.strip()[-300:]}")
    partial.replace(library)
    return source / "libmf" / "mf.py", library


def load(wrapper: Path, library: Path | None, name: str):
    """Import the ctypes wrapper module from ``wrapper`` bound to ``library``.

    ``library=None`` lets the wrapper find the library pip installed beside it. The wrapper
    prints the path it loads; that is swallowed.
    """
    saved = os.environ.get("LIBMF_OBJ")
    if library is not None:
        os.environ["LIBMF_OBJ"] = str(library)
    else:
        os.environ.pop("LIBMF_OBJ", None)
    try:
        spec = importlib.util.spec_from_file_location(name, wrapper)
        module = importlib.util.module_from_spec(spec)
        with contextlib.redirect_stdout(io.StringIO()), _quiet_warnings():
            spec.loader.exec_module(module)
        return module
    finally:
        if saved is None:
            os.environ.pop("LIBMF_OBJ", None)
        else:
            os.environ["LIBMF_OBJ"] = saved


@contextlib.contextmanager
def _quiet_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the wrapper compares strings with `is`
        yield


def installed_wrapper() -> Path | None:
    """The PyPI ``libmf`` wrapper's mf.py when the package is installed, else None."""
    spec = importlib.util.find_spec("libmf")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "mf.py"
    return path if path.is_file() else None


def fit_seconds(module, train: np.ndarray, k: int, threads: int, iters: int,
                clock=time.perf_counter):
    """Seconds (of ``clock``) for one LIBMF fit of ``iters`` iterations: (seconds, P, Q, b)."""
    model = module.MF(k=k, nr_threads=threads, nr_bins=max(20, 2 * threads + 1),
                      nr_iters=iters, lambda_p1=0.0, lambda_q1=0.0, lambda_p2=0.05,
                      lambda_q2=0.05, eta=0.1, quiet=True)
    start = clock()
    model.fit(train)
    seconds = clock() - start
    return seconds, model.p_factors(), model.q_factors(), float(model.model.b)


def rmse(P, Q, b, users, items, values) -> float:
    """Validation RMSE of LIBMF's model r̂ = p_u·q_i (b where a row is missing or NaN)."""
    pred = np.full(len(values), b, dtype=np.float64)
    ok = (users < len(P)) & (items < len(Q))
    dots = np.einsum("nk,nk->n", P[users[ok]], Q[items[ok]], dtype=np.float64)
    pred[ok] = np.where(np.isfinite(dots), dots, b)
    return float(np.sqrt(np.mean((pred - values) ** 2)))
