"""Numba kernels for NVIDIA GPUs (numba-cuda): plain functions over device arrays, no policy.

Importing this package imports ``numba.cuda`` (``recsys.kernels.cuda.cuda``), so only the
CUDA backend (``recsys.training.backends.cuda``) imports it, and only when a GPU is asked
for. Two things are arranged first:

* numba-cuda registers an overload of ``np.row_stack``, which numpy deprecated in 2.0 (an
  alias of ``np.vstack``) and removes in 2.5. Where numpy has no ``row_stack``, it is set
  to ``np.vstack`` before ``numba.cuda`` is imported; with numpy < 2.5 nothing changes.
* Under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) the warp shuffles the kernels
  use, which the simulator lacks, are added to it (``recsys.kernels.cuda.simulator``).
"""

import numpy as np

if not hasattr(np, "row_stack"):
    np.row_stack = np.vstack

from numba.core import config as _config  # noqa: E402

if _config.ENABLE_CUDASIM:
    from recsys.kernels.cuda.simulator import add_warp_shuffles

    add_warp_shuffles()

from numba import cuda  # noqa: E402, F401  (the module, imported through here)
