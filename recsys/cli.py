"""The ``recsys`` command line: a thin layer over the library.

Nothing heavy (numpy, pandas, numba) is imported at module level, so ``recsys --help``
starts instantly. Every ``RecsysError`` (and OS error) becomes one line on stderr and
exit code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys

import click

from . import defaults

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


class _Group(click.Group):
    """A click group that turns expected errors into one line and exit code 2."""

    def invoke(self, ctx):
        debug = ctx.params.get("debug", False)
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("recsys: interrupted; nothing was written", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Exception as exc:  # noqa: BLE001 - the one place errors are reported
            from .errors import RecsysError

            if debug:
                raise
            if isinstance(exc, (RecsysError, OSError, MemoryError, ValueError)):
                click.echo(f"recsys: error: {_one_line(exc)}", err=True)
                sys.exit(EXIT_ERROR)
            click.echo(f"recsys: internal error: {type(exc).__name__}: {_one_line(exc)} "
                       "(run with --debug for the traceback)", err=True)
            sys.exit(EXIT_ERROR)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "out of memory; use fewer factors or less data"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show the full traceback of errors.")
@click.version_option(package_name="recsys")
def main(debug):
    """recsys: Funk-SVD rating prediction and top-N recommendation."""


# ----------------------------------------------------------------------------- options


def _scale(value):
    if value is None:
        return None
    if value.lower() in ("none", "any"):
        return "any"
    try:
        lo, hi = (float(x) for x in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected MIN,MAX (for example 1,5), not {value!r}") \
            from None
    if not lo < hi:
        raise click.BadParameter(f"MIN must be below MAX, not {value!r}")
    return (lo, hi)


def reader_options(func):
    """Options shared by every command that reads a ratings or pairs file."""
    options = [
        click.option("--sep", default=None, metavar="SEP",
                     help="Field separator (default: detected: '::', tab, ',', ';', '|', spaces)."),
        click.option("--columns", default=None, metavar="NAMES",
                     help="Field roles in order, e.g. user,item,rating,timestamp ('-' skips)."),
        click.option("--header/--no-header", default=None,
                     help="Whether the first line names the columns (default: detected)."),
        click.option("--id-type", type=click.Choice(["int", "str"]), default=None,
                     help="Read ids as integers or text (default: detected from the first line)."),
        click.option("--scale", default=None, metavar="MIN,MAX",
                     help="Valid rating range; others are errors (default 0.5,5; 'none': any)."),
        click.option("--skip-bad-lines", is_flag=True,
                     help="Skip malformed lines and report them instead of stopping."),
        click.option("--duplicates", type=click.Choice(["error", "last", "mean"]),
                     default="error", show_default=True,
                     help="What to do with a second rating of the same user and item."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _read_kwargs(opts: dict) -> dict:
    from .io import DEFAULT_SCALE

    scale = _scale(opts.get("scale"))
    return {
        "sep": opts.get("sep"),
        "columns": opts.get("columns"),
        "header": opts.get("header"),
        "id_type": opts.get("id_type"),
        "scale": DEFAULT_SCALE if scale is None else (None if scale == "any" else scale),
        "skip_bad_lines": opts.get("skip_bad_lines", False),
        "duplicates": opts.get("duplicates", "error"),
    }


def variant_options(func):
    """FunkSVD's training-variant options (method, schedule, early stopping), and --config."""
    options = [
        click.option("--method", type=click.Choice(["sgd", "funk", "gd"]), default=None,
                     help="sgd: blocked SGD; funk: one feature at a time (n_epochs passes "
                          f"each); gd: full-batch gradient descent.  [default: {defaults.METHOD}]"),
        click.option("--lr-schedule", type=click.Choice(["constant", "decay", "bold"]),
                     default=None, help="Learning-rate schedule (bold: bold driver).  "
                                        f"[default: {defaults.LR_SCHEDULE}]"),
        click.option("--lr-decay", type=click.FloatRange(0, 1, min_open=True), default=None,
                     help=f"Rate factor per epoch of --lr-schedule decay.  "
                          f"[default: {defaults.LR_DECAY}]"),
        click.option("--early-stopping", type=click.IntRange(min=0), default=None,
                     metavar="PATIENCE", help="Stop after PATIENCE epochs without a better "
                     "validation RMSE and keep the best epoch (uses -p, else holds out 5%).  "
                     f"[default: {defaults.EARLY_STOPPING}: off]"),
        click.option("--config", "config_path", default=None, metavar="CONFIG.json",
                     help="Parameters saved by `recsys tune --save-best`; options given "
                          "here override them."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _model_params(opts: dict) -> dict:
    """Pop the FunkSVD parameters from ``opts``: --config first, explicit options over it."""
    from .model import FunkSVD

    config_path = opts.pop("config_path", None)
    params = {}
    if config_path:
        from .tune import load_config

        params.update(load_config(config_path))
    for name in list(opts):
        if name in FunkSVD._PARAMS:
            value = opts.pop(name)
            if value is not None:
                params[name] = value
    return params


def _load_ratings(path, opts: dict):
    from .io import BadLines, read_ratings

    report = BadLines()
    ratings = read_ratings(path, report=report, **_read_kwargs(opts))
    _report_bad(report)
    return ratings


def _report_bad(report) -> None:
    if report.count:
        click.echo(f"skipped {report.count} bad line{'s' if report.count > 1 else ''}; first:",
                   err=True)
        for example in report.examples:
            click.echo(f"  {example}", err=True)


def _load_model(path):
    from .persist import load

    return load(path)


def _fmt_id(value) -> str:
    return str(value.item() if hasattr(value, "item") else value)


# ----------------------------------------------------------------------------- train


@main.command()
@click.argument("data")
@click.option("-o", "--output", required=True, metavar="MODEL", help="Where to write the model.")
@click.option("-k", "--factors", "n_factors", type=click.IntRange(min=1), default=None,
              help=f"Latent features k.  [default: {defaults.N_FACTORS}]")
@click.option("-t", "--epochs", "n_epochs", type=click.IntRange(min=0), default=None,
              help=f"Passes over the ratings.  [default: {defaults.N_EPOCHS}]")
@click.option("--lr", type=click.FloatRange(min=0), default=None,
              help=f"Learning rate.  [default: {defaults.LR}]")
@click.option("--reg", type=click.FloatRange(min=0), default=None,
              help=f"Regularization of the factors.  [default: {defaults.REG}]")
@click.option("--reg-bias", type=click.FloatRange(min=0), default=None,
              help=f"Regularization of the biases.  [default: {defaults.REG_BIAS}]")
@click.option("--init-std", type=click.FloatRange(min=0), default=None,
              help=f"Std of the initial factors.  [default: {defaults.INIT_STD}]")
@click.option("--seed", type=click.IntRange(min=0), default=None, help=f"Random seed.  [default: {defaults.SEED}]")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default=None,
              help=f"Factor precision.  [default: {defaults.DTYPE}]")
@click.option("-j", "--jobs", "n_jobs", type=click.IntRange(min=1), default=None,
              help="Threads (the model does not depend on it).  [default: all cores]")
@click.option("-p", "--validation", default=None, metavar="FILE",
              help="Ratings to report validation RMSE on after each epoch.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing per epoch.")
@variant_options
@reader_options
def train(data, output, validation, quiet, **opts):
    """Train a model on the ratings in DATA and write it to MODEL."""
    from .atomic import check_writable
    from .model import FunkSVD
    from .persist import save

    check_writable(output)  # fail now, not after a long fit
    model = FunkSVD(**_model_params(opts))
    model._check_params()
    ratings = _load_ratings(data, opts)
    valid = _load_ratings(validation, opts) if validation else None
    if not quiet:
        click.echo(f"{len(ratings):,} ratings, {ratings.n_users:,} users, "
                   f"{ratings.n_items:,} items; {model!r}", err=True)
        header = "epoch  train_rmse" + ("  valid_rmse" if valid is not None else "") + "  seconds"
        click.echo(header)

    def report(info):
        if quiet:
            return
        line = f"{info.epoch:5d}  {info.train_rmse:10.4f}"
        if info.valid_rmse is not None:
            line += f"  {info.valid_rmse:10.4f}"
        click.echo(line + f"  {info.seconds:7.3f}")

    model.fit(ratings, validation=valid, callback=report)
    save(model, output)
    if not quiet:
        click.echo(f"model written to {output}", err=True)


# ----------------------------------------------------------------------------- predict


@main.command()
@click.argument("model_path", metavar="MODEL")
@click.argument("user", required=False)
@click.argument("item", required=False)
@click.option("-i", "--input", "input_path", default=None, metavar="PAIRS",
              help="File of user,item pairs (any format the loader reads).")
@click.option("-o", "--output", default=None, metavar="OUT",
              help="CSV to write user,item,prediction to (default: standard output).")
@click.option("--strict", is_flag=True,
              help="Unknown users or items are an error instead of falling back to biases.")
@reader_options
def predict(model_path, user, item, input_path, output, strict, **opts):
    """Predict the rating of USER for ITEM, or of every pair in --input."""
    from .atomic import atomic_write, check_writable

    if input_path is None and (user is None or item is None):
        raise click.UsageError("give USER and ITEM, or --input PAIRS")
    if input_path is not None and (user is not None or item is not None):
        raise click.UsageError("give either USER and ITEM or --input, not both")
    if output:
        check_writable(output)
    model = _load_model(model_path)
    if input_path is None:
        value = model.predict([user], [item], strict=strict)[0]
        click.echo(f"{value:.4f}")
        return
    from .io import BadLines, read_pairs

    report = BadLines()
    kwargs = _read_kwargs(opts)
    kwargs.pop("scale")
    kwargs.pop("duplicates")
    pairs = read_pairs(input_path, report=report, **kwargs)
    _report_bad(report)
    preds = model.predict(pairs["user"].to_numpy(), pairs["item"].to_numpy(), strict=strict)
    frame = pairs[["user", "item"]].assign(prediction=preds.astype("float64").round(6))
    if output:
        with atomic_write(output, "w", encoding="utf-8", newline="") as fh:
            frame.to_csv(fh, index=False)
    else:
        frame.to_csv(sys.stdout, index=False)


# ----------------------------------------------------------------------------- recommend


@main.command()
@click.argument("model_path", metavar="MODEL")
@click.argument("user")
@click.option("-n", "n", type=click.IntRange(1, 10_000), default=10, show_default=True,
              help="How many items.")
@click.option("--include-seen", is_flag=True, help="Also recommend items the user has rated.")
@click.option("--strict", is_flag=True, help="An unknown user is an error (default: popular items).")
def recommend(model_path, user, n, include_seen, strict):
    """Print the top N items for USER with their scores (and titles where known)."""
    model = _load_model(model_path)
    items, scores = model.recommend(user, n=n, exclude_seen=not include_seen, strict=strict)
    if model.user_map_.index_of(user) < 0:
        click.echo(f"unknown user {user}: showing the best-rated popular items", err=True)
    titles = getattr(model, "item_titles_", {})
    click.echo("rank\titem\tscore" + ("\ttitle" if titles else ""))
    for rank, (item, score) in enumerate(zip(items, scores), 1):
        line = f"{rank}\t{_fmt_id(item)}\t{score:.4f}"
        if titles:
            line += f"\t{titles.get(item.item() if hasattr(item, 'item') else item, '')}"
        click.echo(line)


@main.command()
@click.argument("model_path", metavar="MODEL")
@click.argument("item")
@click.option("-n", "n", type=click.IntRange(1, 10_000), default=10, show_default=True)
def similar(model_path, item, n):
    """Print the N items most similar to ITEM (cosine of the item factors)."""
    model = _load_model(model_path)
    items, sims = model.similar_items(item, n=n)
    titles = getattr(model, "item_titles_", {})
    click.echo("rank\titem\tsimilarity" + ("\ttitle" if titles else ""))
    for rank, (other, sim) in enumerate(zip(items, sims), 1):
        line = f"{rank}\t{_fmt_id(other)}\t{sim:.4f}"
        if titles:
            line += f"\t{titles.get(other.item() if hasattr(other, 'item') else other, '')}"
        click.echo(line)


# ----------------------------------------------------------------------------- evaluate


@main.command()
@click.argument("model_path", metavar="MODEL")
@click.argument("test")
@click.option("--strict", is_flag=True, help="Unknown users or items in TEST are an error.")
@click.option("--ranking", is_flag=True,
              help="Also top-k metrics: held-out items rated >= 4 are the relevant ones.")
@click.option("-k", "ranking_k", type=click.IntRange(1, 10_000), default=10,
              show_default=True, help="List length of the ranking metrics.")
@reader_options
def evaluate(model_path, test, strict, ranking, ranking_k, **opts):
    """Print RMSE and MAE (and with --ranking, precision, recall, NDCG, MAP, hit rate and
    coverage at k) of MODEL on the ratings in TEST."""
    from .metrics import mae, rmse

    model = _load_model(model_path)
    ratings = _load_ratings(test, opts)
    users, items = ratings.raw_users, ratings.raw_items
    preds = model.predict(users, items, strict=strict)
    unknown_users = int((model.user_map_.indices(users) < 0).sum())
    unknown_items = int((model.item_map_.indices(items) < 0).sum())
    click.echo(f"RMSE\t{rmse(ratings.values, preds):.4f}")
    click.echo(f"MAE\t{mae(ratings.values, preds):.4f}")
    click.echo(f"ratings\t{len(ratings)}")
    if ranking:
        from .evaluate import ranking as ranking_metrics

        for name, value in ranking_metrics(model, ratings, ranking_k).items():
            click.echo(f"{name}\t{value:.4f}" if isinstance(value, float) else
                       f"{name}\t{value}")
    if unknown_users or unknown_items:
        click.echo(f"fallbacks\t{unknown_users} ratings of unknown users, "
                   f"{unknown_items} of unknown items (biases used)", err=True)



# ----------------------------------------------------------------------------- cv, tune


def _core_model_options(func):
    """The FunkSVD options of ``train`` that cv shares (same names and defaults)."""
    options = [
        click.option("-k", "--factors", "n_factors", type=click.IntRange(min=1), default=None,
                     help=f"Latent features k.  [default: {defaults.N_FACTORS}]"),
        click.option("-t", "--epochs", "n_epochs", type=click.IntRange(min=0), default=None,
                     help=f"Passes over the ratings.  [default: {defaults.N_EPOCHS}]"),
        click.option("--lr", type=click.FloatRange(min=0), default=None,
                     help=f"Learning rate.  [default: {defaults.LR}]"),
        click.option("--reg", type=click.FloatRange(min=0), default=None,
                     help=f"Regularization of the factors.  [default: {defaults.REG}]"),
        click.option("--reg-bias", type=click.FloatRange(min=0), default=None,
                     help=f"Regularization of the biases.  [default: {defaults.REG_BIAS}]"),
        click.option("--init-std", type=click.FloatRange(min=0), default=None,
                     help=f"Std of the initial factors.  [default: {defaults.INIT_STD}]"),
        click.option("--seed", type=click.IntRange(min=0), default=None,
                     help=f"Random seed of the model and of the folds.  "
                          f"[default: {defaults.SEED}]"),
        click.option("-j", "--jobs", "n_jobs", type=click.IntRange(min=1), default=None,
                     help="Threads (the model does not depend on it).  [default: all cores]"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _print_cv(result) -> None:
    mean, std = result["mean"], result["std"]
    skip = {"fold", "ratings", "unknown_users", "unknown_items", "ranked_users"}
    click.echo("metric\tmean\tstd")
    for name in mean:
        if name not in skip:
            click.echo(f"{name}\t{mean[name]:.4f}\t{std[name]:.4f}")


@main.command()
@click.argument("data")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="Number of random folds.")
@click.option("--model", "model_name", type=click.Choice(["funksvd", "biases", "biases-sgd",
                                                          "global-mean"]),
              default="funksvd", show_default=True, help="What to cross-validate.")
@click.option("--ranking-k", type=click.IntRange(1, 10_000), default=None, metavar="K",
              help="Also top-K ranking metrics (held-out items rated >= 4 are relevant).")
@_core_model_options
@variant_options
@reader_options
def cv(data, folds, model_name, ranking_k, **opts):
    """K-fold cross-validation on DATA: mean and std of RMSE, MAE, times (and ranking)."""
    from .baselines import Biases, GlobalMean
    from .evaluate import cross_validate
    from .model import FunkSVD

    params = _model_params(opts)
    seed = params.get("seed", defaults.SEED)
    if model_name == "funksvd":
        estimator = FunkSVD(**params)
        estimator._check_params()
    elif model_name == "global-mean":
        estimator = GlobalMean()
    else:
        estimator = Biases(method="sgd" if model_name == "biases-sgd" else "damped",
                           seed=seed)
    ratings = _load_ratings(data, opts)
    click.echo(f"{len(ratings):,} ratings; {folds} folds; {estimator!r}", err=True)

    def report(scores):
        click.echo(f"fold {scores['fold']}: RMSE {scores['rmse']:.4f}  MAE {scores['mae']:.4f}"
                   f"  fit {scores['fit_time']:.2f}s", err=True)

    _print_cv(cross_validate(estimator, ratings, folds=folds, seed=seed, ranking_k=ranking_k,
                             callback=report))


def _floats(text):
    try:
        return [float(x) for x in text.split(",")] if text else None
    except ValueError:
        raise click.BadParameter(f"expected numbers separated by commas, not {text!r}") \
            from None


def _ints(text):
    values = _floats(text)
    if values is not None and any(v != int(v) or v < 0 for v in values):
        raise click.BadParameter(f"expected whole numbers separated by commas, not {text!r}")
    return None if values is None else [int(v) for v in values]


@main.command()
@click.argument("data")
@click.option("--factors", "n_factors", default=None, metavar="LIST",
              help="Values of n_factors to try, e.g. 50,100,200.")
@click.option("--epochs", "n_epochs", default=None, metavar="LIST", help="Values of n_epochs.")
@click.option("--lr", default=None, metavar="LIST", help="Values of lr.")
@click.option("--reg", default=None, metavar="LIST", help="Values of reg.")
@click.option("--reg-bias", default=None, metavar="LIST", help="Values of reg_bias.")
@click.option("--init-std", default=None, metavar="LIST", help="Values of init_std.")
@click.option("--grid", "full_grid", is_flag=True,
              help="Try every combination (default: --n-iter random ones).")
@click.option("--n-iter", type=click.IntRange(min=1), default=10, show_default=True,
              help="Random combinations to try.")
@click.option("--folds", type=click.IntRange(min=2), default=3, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the draw, the folds and the models.")
@click.option("--method", type=click.Choice(["sgd", "funk", "gd"]), default=None,
              help="Training method (fixed during the search).")
@click.option("-j", "--jobs", "n_jobs", type=click.IntRange(min=1), default=None,
              help="Threads per fit.")
@click.option("--save-best", default=None, metavar="CONFIG.json",
              help="Write the best parameters here (for `recsys train --config`).")
@reader_options
def tune(data, full_grid, n_iter, folds, seed, method, n_jobs, save_best, **opts):
    """Search factors, lr, reg and epochs by cross-validation; print a ranked table.

    Lists not given keep the default search space (see recsys/tune.py).
    """
    from .tune import DEFAULT_SPACE, save_config, search

    space = dict(DEFAULT_SPACE)
    for name, parse in (("n_factors", _ints), ("n_epochs", _ints), ("lr", _floats),
                        ("reg", _floats), ("reg_bias", _floats), ("init_std", _floats)):
        values = parse(opts.pop(name))
        if values:
            space[name] = values
    if save_best:
        from .atomic import check_writable

        check_writable(save_best)
    base = {"seed": seed}
    if method:
        base["method"] = method
    if n_jobs:
        base["n_jobs"] = n_jobs
    ratings = _load_ratings(data, opts)
    names = list(space)

    def report(row):
        shown = " ".join(f"{n}={row['params'][n]}" for n in names)
        click.echo(f"  rmse {row['rmse']:.4f}  {shown}", err=True)

    rows = search(ratings, space, None if full_grid else n_iter, folds, seed, base, report)
    click.echo("rank\trmse\tstd\tmae\tfit_s\t" + "\t".join(names))
    for rank, row in enumerate(rows, 1):
        click.echo(f"{rank}\t{row['rmse']:.4f}\t{row['rmse_std']:.4f}\t{row['mae']:.4f}\t"
                   f"{row['fit_time']:.2f}\t" + "\t".join(str(row["params"][n]) for n in names))
    if save_best:
        best = rows[0]
        params = {k: v for k, v in best["params"].items() if k != "n_jobs"}
        save_config(save_best, params, {"rmse": best["rmse"], "rmse_std": best["rmse_std"],
                                        "folds": folds, "data": str(data)})
        click.echo(f"best parameters written to {save_best}", err=True)

if __name__ == "__main__":  # pragma: no cover
    main()
