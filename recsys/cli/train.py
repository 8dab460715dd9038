"""``recsys train``."""

from __future__ import annotations

import click

from recsys.cli.common import _input_path, _load_events, _load_ratings
from recsys.cli.options import _model_params, model_options, reader_options, variant_options


@click.command()
@click.argument("data")
@click.option("-o", "--output", required=True, metavar="MODEL", help="Where to write the model.")
@model_options()
@click.option("-p", "--validation", default=None, metavar="FILE",
              help="Ratings to report validation RMSE on after each epoch.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing per epoch.")
@click.option("--init", "init_path", default=None, metavar="MODEL",
              help="Continue from this model's factors and biases (a warm start; its "
                   "users and items keep their rows, new ones get fresh rows).")
@click.option("--implicit", is_flag=True,
              help="DATA holds events (user, item[, count]), not ratings: each line counts "
                   "once (or its count), repeated pairs add up; trains the ranking "
                   "objective weighted by the counts (--objective ranking --threshold none).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run the epochs on the Dask cluster of this scheduler (tcp://HOST:8786): "
                   "method sgd on the CPU without a warm-up (--warmup-epochs 0), the same "
                   "model as in this process; needs the dask extra.")
@click.option("--dask-workers", type=click.IntRange(1), default=None, metavar="N",
              help="Run the epochs on a local Dask cluster of N worker processes, started "
                   "and stopped for this fit.")
@click.option("--worker-memory", default=None, metavar="SIZE",
              help="Memory limit of each --dask-workers process (e.g. 2GiB; default: the "
                   "machine's memory shared out).")
@click.option("--checkpoint", "checkpoint", default=None, metavar="DIR",
              help="With a Dask cluster: the workers write the factors to DIR after every "
                   "epoch, and an epoch in which a worker is lost runs again from there on "
                   "the workers left (the same model).")
@click.option("--resume", is_flag=True,
              help="Continue the fit whose checkpoint is in --checkpoint DIR (its client "
                   "stopped) after its last epoch; the same parameters and data.")
@click.option("--dask-timeout", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True, metavar="SECONDS",
              help="How long to wait for the scheduler and its workers.")
@variant_options
@reader_options
def train(data, output, validation, quiet, implicit, init_path, scheduler, dask_workers,
          worker_memory, checkpoint, resume, dask_timeout, **opts):
    """Train a model on the ratings in DATA and write it to MODEL."""
    import contextlib

    if scheduler is not None and dask_workers is not None:
        raise click.UsageError("give --scheduler or --dask-workers, not both")
    if worker_memory is not None and dask_workers is None:
        raise click.UsageError("--worker-memory sizes the workers of --dask-workers")
    if checkpoint is not None and scheduler is None and dask_workers is None:
        raise click.UsageError("--checkpoint is for a fit on a Dask cluster (--scheduler or "
                               "--dask-workers)")
    if resume and checkpoint is None:
        raise click.UsageError("--resume continues from --checkpoint DIR")
    cluster = contextlib.nullcontext()
    if scheduler is not None or dask_workers is not None:
        from recsys.distributed.cluster import connect, parse_memory, require

        require()  # the extra is missing: say so before anything else
        parse_memory(worker_memory)
        cluster = connect(scheduler, dask_workers, worker_memory, timeout=dask_timeout)
    with cluster as client:
        _train(data, output, validation, quiet, implicit, init_path, client,
               {"checkpoint": checkpoint, "resume": resume}, opts)


def _train(data, output, validation, quiet, implicit, init_path, client, backend_options,
           opts):
    from recsys.atomic import check_writable
    from recsys.models.registry import make_estimator
    from recsys.training.backends import require as require_backend

    # fail now, not after a long fit; and never replace what is read
    check_writable(output, inputs=[_input_path(data), validation, opts.get("config_path"),
                                   init_path])
    params = _model_params(opts)
    if implicit:
        if params.get("objective", "ranking") != "ranking":
            raise click.UsageError("--implicit trains the ranking objective")
        params = {"threshold": None, **params, "objective": "ranking"}
    model = make_estimator(params)
    require_backend(getattr(model, "device", "cpu"))  # no GPU: say so before reading data
    from recsys.distributed.partition import is_partition

    if is_partition(data) and client is None:
        raise click.UsageError(f"{data} is a partition: train it with --dask-workers N or "
                               "--scheduler ADDRESS")
    fit_options = {}
    if client is not None:
        if init_path is not None or implicit or not hasattr(model, "distributed_backend"):
            raise click.UsageError("a Dask cluster trains FunkSVD by method sgd from the "
                                   "seed (no --init, no --implicit)")
        # method sgd on the CPU, or say so before reading the data
        fit_options["client"] = model.distributed_backend(client, **backend_options)
    if is_partition(data):  # the workers read its blocks
        from recsys.distributed.partition import Partition

        ratings = data
        part = Partition.open(data)
        sizes = (len(part), part.n_users, part.n_items)
    else:
        ratings = _load_events(data, opts) if implicit else _load_ratings(data, opts)
        sizes = (len(ratings), ratings.n_users, ratings.n_items)
    valid = _load_ratings(validation, opts) if validation else None
    if not quiet:
        click.echo(f"{sizes[0]:,} ratings, {sizes[1]:,} users, {sizes[2]:,} items; "
                   f"{model!r}", err=True)

    from recsys.progress import Silent, bar

    trials, started = Silent(), False

    def report_reg(reg, held_out_rmse):
        nonlocal trials, started
        if not quiet:
            if not started:  # the first trial: a bar of unknown length
                trials, started = bar(None, "reg auto", "trial"), True
            trials.echo(f"reg auto: {reg:g} gives RMSE {held_out_rmse:.4f} on 10% held out")
            trials.update()

    def report(info):
        if quiet:
            return
        if info.epoch == 1:
            trials.close()
            if getattr(model, "reg_trials_", None):
                click.echo(f"reg auto chose {model.reg_:g} (--reg {model.reg_:g} skips the "
                           f"search next time)", err=True)
            click.echo("epoch  train_rmse" + ("  valid_rmse" if info.valid_rmse is not None
                                              else "") + "  seconds")
        line = f"{info.epoch:5d}  {info.train_rmse:10.4f}"
        if info.valid_rmse is not None:
            line += f"  {info.valid_rmse:10.4f}"
        click.echo(line + f"  {info.seconds:7.3f}")

    if init_path is not None:
        from recsys.models.registry import load

        parent = load(init_path)  # its factor count and dtype unless given
        for name, value in (("n_factors", parent.state_.n_factors),
                            ("dtype", str(parent.state_.dtype))):
            if name not in params and hasattr(model, name):
                setattr(model, name, value)
        model.fit(ratings, validation=valid, callback=report, init=parent)
    else:
        try:
            model.fit(ratings, validation=valid, callback=report, reg_callback=report_reg,
                      **fit_options)
        finally:
            trials.close()  # if no epoch closed it
    model.save(output)
    if not quiet:
        click.echo(f"model written to {output}", err=True)
