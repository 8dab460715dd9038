"""Blocked SGD on a Dask cluster (the ``dask`` extra): the same arithmetic as the in-process
fit, with the user blocks of the grid spread over worker processes.

* ``layout``: which worker owns which user blocks, and where each item block goes next
  (plain numpy, no Dask).
* ``actor``: the state a worker keeps for the whole fit (its ratings, P rows and user
  biases; the item blocks passing through) and the epoch it runs; ``whole``: the epoch of a
  worker that owns every user block, in one call into the in-process kernel.
* ``traffic``: the bytes of item blocks an epoch's stratum order moves between workers.
* ``backend``: the client's side, a training backend (``recsys.training.backends``) that
  the one training loop drives.
* ``partition``, ``fit``: a rating set cut into blocks on disk, and training from it.
* ``checkpoint``: the files of every epoch, to recover a lost worker or resume a fit.
* ``resources``: the memory a worker needs for its share.
* ``cluster``: connecting to a scheduler or starting a local cluster, with timeouts and
  one-line errors.

Nothing here is imported by ``import recsys``; Dask is imported only when a fit is given
a client.
"""
