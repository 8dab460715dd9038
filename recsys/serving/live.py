"""Live updates of a served model: POST /ratings, the write-ahead log, the replay.

A rating is checked (known item, the model's user id type, within the training ratings'
range), appended to the ratings log and fsynced (``recsys.persist.ratings_log``), and only
then applied: its user's row is re-solved against the fixed item factors
(``recsys.models.live``) and a user the model did not know becomes known. So the answer
200 means the rating is durable and the user's next predictions and recommendations
reflect it. Loading a model replays the log entries after the last one the model covers
(its lineage), and retires those it covers; the workers of ``recsys serve --workers N``
share the log and each applies what the others appended before answering a request.
"""

from __future__ import annotations

import threading

from recsys.errors import DataError, ModelError


def start_live(served, path) -> None:
    """Give ``served`` live updates from the ratings log at ``path``: replay what the
    model does not cover, retire what it does. ``ModelError`` if that cannot be done."""
    from recsys.models.live import LiveRows
    from recsys.persist.ratings_log import RatingsLog, covered_through

    try:
        served.live = LiveRows(served.model)
        served.log = RatingsLog(path)
    except (TypeError, DataError, OSError) as exc:
        raise ModelError(f"live updates: {exc}") from None
    through = covered_through(served.state.lineage)
    retired = served.log.retired_through()
    if retired > through:
        raise ModelError(f"{path}: the ratings through {retired} were retired into a model, "
                         f"but this model covers only those through {through}: serve the "
                         "newer model, or move the log aside to serve this one without them")
    served.live.through = through
    served._changed = served.live.changed
    served._live_lock = threading.Lock()
    catch_up(served)
    if through > 0:
        served.log.retire(through)


def catch_up(served) -> None:
    """Apply what the log holds beyond what ``served`` has applied (in this process or
    another)."""
    with served._live_lock:
        try:
            entries = served.log.follow(served.live.through)
            _apply(served, entries)
        except (DataError, ValueError) as exc:
            raise ModelError(f"{served.log.path}: cannot replay the ratings log: {exc}") \
                from None


def stale(served) -> bool:
    """Whether the log may hold entries ``served`` has not applied."""
    return served.log is not None and served.log.changed()


def _apply(served, entries) -> None:
    live = served.live
    before = len(live.new_users)
    live.apply(entries)
    served.P, served.user_bias = live.P, live.user_bias  # grown before ids are published
    for n, raw in enumerate(live.new_users[before:], served.n_users):
        served.user_ids.append(raw)
        served._user_index[raw] = n
    served.n_users = live.n_users


def add_ratings(served, rows) -> dict:
    """Check, log (durably) and apply ``rows`` of (user, item, rating, ts); what POST
    /ratings answers. ValueError names a bad row; nothing is logged then."""
    if served.log is None:
        raise RuntimeError("live updates are off")
    checked = served.live.check(rows, served.item_index)
    new_users = sorted({str(r[0]) for r in checked
                        if served.user_index(r[0]) < 0}, key=str)
    entries = served.log.append(checked)
    catch_up(served)
    return {"accepted": len(entries),
            "seq": [entries[0].seq, entries[-1].seq] if entries else None,
            "new_users": new_users}
