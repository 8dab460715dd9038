"""Training on a GPU (``FunkSVD(device='cuda')``, ``recsys train --device cuda``) without one.

The kernels and backends run in numba's CUDA simulator, in a subprocess (the simulator
must be switched on before numba starts, and the rest of the suite must not see it):
``tests/cuda_sim_checks.py``. Where the CUDA toolkit's compiler libraries are installed,
the kernels are also compiled to PTX for a real GPU (sm_80 and sm_90), which the
simulator, running them as Python, cannot check. The rest needs no GPU: asking for one
where there is none is one line and exit code 2.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from recsys.cli import main
from recsys.errors import DeviceError
from recsys.models.funksvd import FunkSVD
from recsys.models.registry import make_estimator

ROOT = Path(__file__).resolve().parents[1]
needs_numba_cuda = pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None,
                                      reason="numba-cuda is not installed (the cuda extra)")


def _env(**changes) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep)
    env.update(changes)
    return env


@needs_numba_cuda
def test_kernels_backends_and_the_estimator_contract_in_the_simulator():
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(ROOT / "tests" / "cuda_sim_checks.py")],
                         cwd=ROOT, env=_env(NUMBA_ENABLE_CUDASIM="1"), capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and "skipped" not in run.stdout, run.stdout[-2000:]


_COMPILE = """
import types, numba, numpy as np
import recsys.kernels.cuda
import numba.cuda.dispatcher as dispatcher
from numba import cuda
from recsys.kernels.cuda import sgd as k
for cc in ((8, 0), (9, 0)):
    # device functions are compiled for the current device: there is none here
    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)
    for dt in (np.float32, np.float64):
        i, v, f, M = (np.zeros(3, np.int32), np.zeros(3, np.float32), np.zeros(3, dt),
                      np.zeros((3, 4), dt))
        s, ptr, cols, out = dt(0), np.zeros(4, np.int64), np.zeros(2, np.int64), np.zeros(8)
        kernels = {
            k.hogwild_epoch: (i, i, v, 1, 0, s, f, f, M, M, s, s, s, True, f, f, f, f, out),
            k.stratum: (i, i, v, ptr, 1, cols, s, f, f, M, M, s, s, s, True, f, f, f, f, out),
            k.clipped_sse: (i, i, v, s, f, f, M, M, s, s, out),
            k.sum_into: (out, out),
        }
        for kernel, args in kernels.items():
            try:
                ptx, _ = cuda.compile_ptx(kernel.py_func, tuple(map(numba.typeof, args)), cc=cc)
            except Exception as exc:
                names = {c.__name__ for c in type(exc).__mro__}
                if names & {"NvvmSupportError", "DynamicLibNotFoundError"}:
                    raise SystemExit(3)
                raise
            assert "shfl.sync" in ptx
print("compiled")
"""


@needs_numba_cuda
def test_the_kernels_compile_for_a_gpu():
    run = subprocess.run([sys.executable, "-c", _COMPILE], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=600)
    if run.returncode == 3:
        pytest.skip("the CUDA toolkit's NVVM is not installed (numba-cuda[cu12] or [cu13])")
    assert run.returncode == 0 and "compiled" in run.stdout, run.stderr[-4000:]


@needs_numba_cuda
def test_device_cuda_without_a_gpu_is_one_line_and_exit_2(tmp_path):
    data = tmp_path / "ratings.csv"
    data.write_text("user,item,rating\n1,1,4\n1,2,3\n2,1,5\n2,2,2\n")
    model = tmp_path / "model.npz"
    # no GPU here; where there is one, hiding it leaves the driver without a device
    run = subprocess.run([sys.executable, "-m", "recsys", "train", str(data), "-o",
                          str(model), "--device", "cuda"], cwd=tmp_path,
                         env=_env(CUDA_VISIBLE_DEVICES=""), capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("recsys: error: ") and "CUDA" in lines[0]
    assert "--device cpu" in lines[0]
    assert not model.exists()


def test_device_cuda_without_numba_cuda_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "numba_cuda", None)  # import numba_cuda fails
    data = tmp_path / "ratings.csv"
    data.write_text("user,item,rating\n1,1,4\n2,2,2\n")
    result = CliRunner().invoke(main, ["train", str(data), "-o", str(tmp_path / "m.npz"),
                                       "--device", "cuda"])
    assert result.exit_code == 2
    assert result.output.strip() == ("recsys: error: --device cuda needs numba-cuda: "
                                     "pip install 'recsys-mf[cuda]'")
    with pytest.raises(DeviceError, match="needs numba-cuda"):
        FunkSVD(device="cuda-strata").fit(str(data))


def test_update_on_a_gpu_is_asked_for_like_train(tmp_path, monkeypatch):
    data = tmp_path / "ratings.csv"
    data.write_text("user,item,rating\n1,1,4\n1,2,3\n2,1,5\n2,2,2\n")
    model = tmp_path / "model.npz"
    runner = CliRunner()
    trained = runner.invoke(main, ["train", str(data), "-o", str(model), "-q", "-k", "2",
                                   "-t", "2", "--reg", "0.05"])
    assert trained.exit_code == 0, trained.output
    monkeypatch.setitem(sys.modules, "numba_cuda", None)
    result = runner.invoke(main, ["update", str(model), str(data), "-o",
                                  str(tmp_path / "new.npz"), "--device", "cuda"])
    assert result.exit_code == 2
    assert result.output.strip().endswith("needs numba-cuda: pip install 'recsys-mf[cuda]'")
    assert not (tmp_path / "new.npz").exists()


@pytest.mark.parametrize("params", [{"method": "funk"}, {"method": "gd"}])
def test_only_sgd_trains_on_a_gpu(params):
    with pytest.raises(ValueError, match="sgd only"):
        FunkSVD(device="cuda", **params).check_params()


def test_other_models_do_not_take_a_gpu():
    with pytest.raises(ValueError, match="sgd only"):
        make_estimator({"method": "svdpp", "device": "cuda"})
    with pytest.raises(ValueError, match="sgd only"):
        make_estimator({"objective": "ranking", "device": "cuda"})
    assert make_estimator({"objective": "ranking", "device": "cpu"}).n_factors > 0


def test_a_training_config_for_a_gpu_needs_sgd():
    import numpy as np

    from recsys.training.config import TrainConfig
    from recsys.training.loop import IndexedRatings, train

    ratings = IndexedRatings(np.zeros(2, np.int32), np.array([0, 1], np.int32),
                             np.array([3.0, 4.0], np.float32), 1, 2)
    with pytest.raises(ValueError, match="sgd only"):
        train(TrainConfig(method="gd", backend="cuda", n_factors=2, n_epochs=1), ratings)
