"""What a fit leaves: the FactorState of trained factors (maps, seen items, scale, titles,
lineage), and the ratings' digest hashed while the fit runs."""

from __future__ import annotations

import numpy as np

from recsys.data.ratings import Ratings
from recsys.state import FactorState, Lineage


def seen_index(ratings: Ratings, scratch=None) -> tuple[np.ndarray, np.ndarray]:
    """CSR (indptr int64, indices int32 sorted per user) of each user's training items
    (``scratch``: ``recsys.kernels.cpu.predict.seen_csr``'s)."""
    from recsys.kernels.cpu.predict import seen_csr

    return seen_csr(ratings.users, ratings.items, ratings.n_users, scratch)


def new_state(ratings: Ratings, factors, digest=None, scratch=None) -> FactorState:
    """The FactorState of factors trained on ``ratings``: maps, seen items, scale, titles,
    lineage (the data's digest and counts). ``digest``: a future of ``ratings.digest()``
    (``digest_meanwhile``), or None to hash them here; ``scratch``: arrays the seen-items
    index may be built in (``seen_index``)."""
    values = ratings.values
    return FactorState(
        factors, ratings.user_map, ratings.item_map, seen_index(ratings, scratch),
        (float(values.min()), float(values.max())), dict(ratings.item_titles),
        Lineage(data=[ratings.lineage_entry(None if digest is None else digest.result())]))


def digest_meanwhile(ratings: Ratings):
    """A future of ``ratings.digest()``, hashed on a thread of its own while the fit goes
    on (hashlib lets go of the GIL), where the fit runs on more than one thread: the
    hash (0.06 s at 10M ratings) then overlaps the fit's single-threaded steps, such as
    drawing the initial factors. None on one thread: the fit hashes them at its end."""
    import numba

    if numba.get_num_threads() < 2:
        return None
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recsys-digest")
    try:
        return pool.submit(ratings.digest)
    finally:
        pool.shutdown(wait=False)  # the thread ends with the hash
