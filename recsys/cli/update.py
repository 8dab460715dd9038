"""``recsys update``: a fitted model continued with new ratings, without retraining."""

from __future__ import annotations

import click

from recsys.cli.common import _input_path, _load_ratings
from recsys.cli.options import reader_options
from recsys.models.params import DEVICES


@click.command()
@click.argument("model_path", metavar="MODEL")
@click.argument("new_path", metavar="[NEW_RATINGS]", required=False)
@click.option("-o", "--output", required=True, metavar="NEW_MODEL",
              help="Where to write the updated model.")
@click.option("--base", "base_path", default=None, metavar="DATA",
              help="The ratings MODEL was trained on: replayed with the new ones, so the "
                   "model does not drift toward them (without it only NEW_RATINGS train).")
@click.option("--log", "log_path", default=None, metavar="FILE",
              help="Fold the ratings log of 'recsys serve --ratings-log FILE' into MODEL "
                   "(the entries MODEL does not cover yet), as the service applied them; "
                   "with --base, train on them like NEW_RATINGS instead.")
@click.option("-t", "--epochs", "n_epochs", type=click.IntRange(min=0), default=None,
              help="Epochs over the new ratings and the replay.  [default: 5]")
@click.option("--replay", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Share of the base ratings replayed.")
@click.option("--device", type=click.Choice(DEVICES), default=None,
              help="Where the epochs run (a GPU: FunkSVD only).  [default: MODEL's]")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing per epoch.")
@reader_options
def update(model_path, new_path, output, base_path, log_path, n_epochs, replay, device, quiet,
           **opts):
    """Update MODEL with NEW_RATINGS: new users and items folded in, then a few epochs over
    the new ratings and the base ones; write the result to NEW_MODEL. A new rating of a
    pair the model was trained on follows --duplicates.

    With --log FILE instead of NEW_RATINGS, the live ratings a service logged are folded
    in; NEW_MODEL records the last one it covers, and serving it retires those."""
    from recsys.atomic import check_writable
    from recsys.models.registry import load
    from recsys.training.backends import require as require_backend

    if (new_path is None) == (log_path is None):
        raise click.UsageError("give NEW_RATINGS or --log FILE (one of them)")
    check_writable(output, inputs=[model_path, base_path,
                                   log_path if log_path else _input_path(new_path)])
    model = load(model_path)
    if device is not None:
        if hasattr(model, "device"):
            model.device = device
        elif device != "cpu":
            raise click.UsageError(f"--device {device}: a {type(model).__name__} trains on "
                                   "the CPU only")
    require_backend(getattr(model, "device", "cpu"))  # no GPU: say so before reading data
    if log_path is not None:
        return _update_from_log(model, log_path, output, base_path, n_epochs, replay, quiet,
                                opts)
    duplicates = opts.get("duplicates", "error")  # within the new file and across
    new = _load_ratings(new_path, opts)
    base = _load_ratings(base_path, opts) if base_path else None
    before = (model.state_.n_users, model.state_.n_items)

    def report(info):
        if not quiet:
            if info.epoch == 1:
                click.echo("epoch  train_rmse  seconds")
            click.echo(f"{info.epoch:5d}  {info.train_rmse:10.4f}  {info.seconds:7.3f}")

    model.partial_fit(new, n_epochs=n_epochs, base=base, replay=replay, duplicates=duplicates,
                      callback=report)
    model.save(output)
    if not quiet:
        after = (model.state_.n_users, model.state_.n_items)
        click.echo(f"{len(new):,} new ratings; {after[0] - before[0]:,} new users, "
                   f"{after[1] - before[1]:,} new items; model written to {output}", err=True)


def _update_from_log(model, log_path, output, base_path, n_epochs, replay, quiet, opts):
    import pandas as pd

    from recsys.errors import DataError
    from recsys.models.live import fold_log, log_entry
    from recsys.persist.ratings_log import RatingsLog, covered_through

    log = RatingsLog(log_path)
    through = covered_through(model.state_.lineage)
    if log.retired_through() > through:
        raise DataError(f"its ratings through {log.retired_through()} were retired into a "
                        f"newer model than MODEL (which covers {through})",
                        log_path)
    entries = log.read(after=through)
    before = model.state_.n_users
    if base_path is None:
        try:
            fold_log(model, entries, log_path)
        except (TypeError, ValueError) as exc:
            raise DataError(str(exc), log_path) from None
    else:
        frame = pd.DataFrame({"user": [e.user for e in entries],
                              "item": [e.item for e in entries],
                              "rating": [e.rating for e in entries]})
        base = _load_ratings(base_path, opts)
        model.partial_fit(frame.drop_duplicates(["user", "item"], keep="last"),
                          n_epochs=n_epochs, base=base, replay=replay, duplicates="last")
        model.state_.lineage.data[-1] = {**log_entry(entries, log_path), "update": True,
                                         "base": base.lineage_entry()["sha256"]}
    model.save(output)
    if not quiet:
        last = entries[-1].seq if entries else through
        click.echo(f"{len(entries):,} logged ratings folded in (through {last}); "
                   f"{model.state_.n_users - before:,} new users; model written to {output}",
                   err=True)
