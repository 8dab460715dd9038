"""The ``recsys`` command line: a thin layer over the library.

Nothing heavy (numpy, pandas, numba) is imported at module level, so ``recsys --help``
starts instantly. Every ``RecsysError`` (and OS error) becomes one line on stderr and
exit code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import click

from recsys.models.params import METHODS, PARAMS, REG_REFERENCE

defaults = SimpleNamespace(
    **{name.upper(): spec.default for name, spec in PARAMS.items()},
    METHODS=METHODS, REG_REFERENCE=REG_REFERENCE)

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a killed writer


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
        except BrokenPipeError:
            # the reader went away (``recsys predict ... | head``): stop quietly, as cat does
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(EXIT_BROKEN_PIPE)
        except Exception as exc:  # noqa: BLE001 - the one place errors are reported
            from recsys.errors import RecsysError

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


def _reg_value(text: str):
    """'auto' or a finite number >= 0 (a factor regularization)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value < float("inf"):
        raise click.BadParameter(f"expected 'auto' or a number >= 0, not {text!r}")
    return value


def _reg(ctx, param, value):
    return None if value is None else _reg_value(value)


#: --reg of train and cv.
REG_OPTION = dict(default=None, metavar="auto|FLOAT", callback=_reg,
                  help="Regularization of the factors; auto: chosen on 10% of the training "
                       f"ratings held out, from a ladder around {defaults.REG_REFERENCE} "
                       f"(about 3.7 fits).  [default: {defaults.REG}]")


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
    from recsys.data.readers import DEFAULT_SCALE

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
        click.option("--method", type=click.Choice(defaults.METHODS), default=None,
                     help="sgd: blocked SGD; funk: one feature at a time (n_epochs passes "
                          "each); gd: full-batch gradient descent; svdpp: SVD++ (implicit "
                          "feedback folded into the user factors).  "
                          f"[default: {defaults.METHOD}]"),
        click.option("--reg-implicit", type=click.FloatRange(min=0), default=None,
                     help="Regularization of the implicit item factors of --method svdpp.  "
                          f"[default: {defaults.REG_IMPLICIT}]"),
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
    from recsys.models.registry import FLAT_PARAMS

    config_path = opts.pop("config_path", None)
    params = {}
    if config_path:
        from recsys.evaluation.tune import load_config

        params.update(load_config(config_path))
    for name in list(opts):
        if name in FLAT_PARAMS:
            value = opts.pop(name)
            if value is not None:
                params[name] = value
    return params


def _load_ratings(path, opts: dict):
    from recsys.data.movielens import resolve_data
    from recsys.data.readers import BadLines, read_ratings

    report = BadLines()
    ratings = read_ratings(resolve_data(path), report=report, **_read_kwargs(opts))
    _report_bad(report)
    return ratings


def _report_bad(report) -> None:
    if report.count:
        click.echo(f"skipped {report.count} bad line{'s' if report.count > 1 else ''}; first:",
                   err=True)
        for example in report.examples:
            click.echo(f"  {example}", err=True)


def _load_model(path):
    from recsys.models.registry import load

    return load(path)


def _fmt_id(value) -> str:
    return str(value.item() if hasattr(value, "item") else value)


def _print_ranked(model, items, values, label: str) -> None:
    """A ranked item table (rank, item, score or similarity, and titles where known)."""
    titles = getattr(model, "item_titles_", {})
    click.echo(f"rank\titem\t{label}" + ("\ttitle" if titles else ""))
    for rank, (item, value) in enumerate(zip(items, values, strict=True), 1):
        line = f"{rank}\t{_fmt_id(item)}\t{value:.4f}"
        if titles:
            line += f"\t{titles.get(item.item() if hasattr(item, 'item') else item, '')}"
        click.echo(line)


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
@click.option("--reg", **REG_OPTION)
@click.option("--reg-bias", type=click.FloatRange(min=0), default=None,
              help=f"Regularization of the biases.  [default: {defaults.REG_BIAS}]")
@click.option("--init-std", type=click.FloatRange(min=0), default=None,
              help=f"Std of the initial factors.  [default: {defaults.INIT_STD}]")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help=f"Random seed.  [default: {defaults.SEED}]")
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
    from recsys.atomic import check_writable
    from recsys.models.registry import make_estimator

    check_writable(output)  # fail now, not after a long fit
    model = make_estimator(_model_params(opts))
    ratings = _load_ratings(data, opts)
    valid = _load_ratings(validation, opts) if validation else None
    if not quiet:
        click.echo(f"{len(ratings):,} ratings, {ratings.n_users:,} users, "
                   f"{ratings.n_items:,} items; {model!r}", err=True)

    def report_reg(reg, held_out_rmse):
        if not quiet:
            click.echo(f"reg auto: {reg:g} gives RMSE {held_out_rmse:.4f} on 10% held out",
                       err=True)

    def report(info):
        if quiet:
            return
        if info.epoch == 1:
            if model.reg_trials_:
                click.echo(f"reg auto chose {model.reg_:g} (--reg {model.reg_:g} skips the "
                           f"search next time)", err=True)
            click.echo("epoch  train_rmse" + ("  valid_rmse" if valid is not None else "")
                       + "  seconds")
        line = f"{info.epoch:5d}  {info.train_rmse:10.4f}"
        if info.valid_rmse is not None:
            line += f"  {info.valid_rmse:10.4f}"
        click.echo(line + f"  {info.seconds:7.3f}")

    model.fit(ratings, validation=valid, callback=report, reg_callback=report_reg)
    model.save(output)
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
    from recsys.atomic import atomic_write, check_writable

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
    from recsys.data.readers import BadLines, read_pairs

    report = BadLines()
    kwargs = _read_kwargs(opts)
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
@click.option("--strict", is_flag=True,
              help="An unknown user is an error (default: popular items).")
def recommend(model_path, user, n, include_seen, strict):
    """Print the top N items for USER with their scores (and titles where known)."""
    model = _load_model(model_path)
    items, scores = model.recommend(user, n=n, exclude_seen=not include_seen, strict=strict)
    if model.user_map_.index_of(user) < 0:
        click.echo(f"unknown user {user}: showing the best-rated popular items", err=True)
    _print_ranked(model, items, scores, "score")


@main.command()
@click.argument("model_path", metavar="MODEL")
@click.argument("item")
@click.option("-n", "n", type=click.IntRange(1, 10_000), default=10, show_default=True)
def similar(model_path, item, n):
    """Print the N items most similar to ITEM (cosine of the item factors)."""
    model = _load_model(model_path)
    items, sims = model.similar_items(item, n=n)
    _print_ranked(model, items, sims, "similarity")


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
    from recsys.evaluation.metrics import mae, rmse

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
        from recsys.evaluation.evaluate import ranking as ranking_metrics

        for name, value in ranking_metrics(model, ratings, ranking_k).items():
            click.echo(f"{name}\t{value:.4f}" if isinstance(value, float) else
                       f"{name}\t{value}")
    if unknown_users or unknown_items:
        click.echo(f"fallbacks\t{unknown_users} ratings of unknown users, "
                   f"{unknown_items} of unknown items (biases used)", err=True)


# ----------------------------------------------------------------------------- fold-in


@main.command("fold-in")
@click.argument("model_path", metavar="MODEL")
@click.argument("ratings_path", metavar="RATINGS")
@click.option("-n", "n", type=click.IntRange(1, 10_000), default=10, show_default=True,
              help="How many items.")
@click.option("--include-rated", is_flag=True, help="Also recommend the items in RATINGS.")
@click.option("--strict", is_flag=True, help="Items unknown to the model are an error.")
def fold_in(model_path, ratings_path, n, include_rated, strict):
    """Recommend for a new user from their RATINGS file (item,rating lines), no retraining."""
    from recsys.models.foldin import read_user_ratings

    model = _load_model(model_path)
    ratings = read_user_ratings(ratings_path)
    unknown = int((model.item_map_.indices(ratings[0]) < 0).sum())
    if unknown:
        if strict:
            model.fold_in(ratings, strict=True)  # raises, naming the items
        click.echo(f"{unknown} of {len(ratings[0])} rated items are not in the model; "
                   "ignored", err=True)
    _, bias = model.fold_in(ratings)
    items, scores = model.recommend_for_ratings(ratings, n=n, exclude_rated=not include_rated)
    click.echo(f"folded in {len(ratings[0]) - unknown} ratings; user bias {bias:+.4f}", err=True)
    _print_ranked(model, items, scores, "score")


# ----------------------------------------------------------------------------- serve


@main.command()
@click.argument("model_path", metavar="MODEL")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes (each holds the model; one per core is a good start).")
@click.option("--max-n", type=click.IntRange(1, 10_000), default=1000, show_default=True,
              help="Largest n a request may ask for.")
@click.option("--max-batch", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Most pairs in one /predict (and ratings in one fold-in).")
@click.option("--max-body", type=click.IntRange(min=1), default=1 << 20, show_default=True,
              help="Largest request body in bytes.")
@click.option("--cache-top", type=click.IntRange(min=0), default=100, show_default=True,
              help="Precompute each user's top items and each item's most similar items "
                   "at load (0: off; skipped where users x items x factors is over 5e9).")
@click.option("--fast-path/--no-fast-path", default=True, show_default=True,
              help="Answer plainly valid requests to the hot endpoints without FastAPI's "
                   "per-request work (same answers).")
@click.option("--access-log", is_flag=True, help="Log every request (slower).")
def serve(model_path, host, port, workers, max_n, max_batch, max_body, cache_top, fast_path,
          access_log):
    """Serve MODEL over HTTP: predictions, recommendations, similar items, new users.

    SIGHUP reloads MODEL (a file that fails to load is refused; the old model keeps
    serving); so does POST /admin/reload when RECSYS_ADMIN_TOKEN is set. API docs at /docs.
    """
    import importlib.util
    import os

    from recsys.errors import RecsysError

    missing = [m for m in ("fastapi", "uvicorn", "orjson") if importlib.util.find_spec(m) is None]
    if missing:
        raise RecsysError(f"recsys serve needs {', '.join(missing)}: "
                          "install them with pip install 'recsys[serve]'")
    # requests are small: one thread per process, and more processes for more cores
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "NUMBA_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    import uvicorn

    from recsys.serving.app import ENV_MODEL, ENV_SETTINGS, Settings, create_app

    settings = Settings(max_n=max_n, max_batch=max_batch, max_body_bytes=max_body,
                        cache_top=cache_top, fast_path=fast_path, reload_on_sighup=True)
    app = create_app(model_path, settings)  # fails here, exit 2, if MODEL does not load
    click.echo(f"serving {model_path} with {workers} worker{'s' if workers > 1 else ''}; "
               "API docs at /docs", err=True)
    options = {"host": host, "port": port, "access_log": access_log, "log_level": "info"}
    if workers == 1:
        uvicorn.run(app, **options)
    else:  # each worker builds its own app; SIGHUP to this process restarts them one by one
        # (and a worker sent SIGHUP itself reloads in place, like a single process)
        del app
        os.environ[ENV_MODEL] = os.path.abspath(model_path)
        os.environ[ENV_SETTINGS] = settings.to_env()
        uvicorn.run("recsys.serving.app:app_from_env", factory=True, workers=workers, **options)

# ----------------------------------------------------------------------------- data


@main.command()
@click.argument("name")
@click.option("--force", is_flag=True, help="Download again even if it is already there.")
@click.option("--mirror", default=None, metavar="URL",
              help="Base URL to fetch from instead of GroupLens (or set RECSYS_MIRROR).")
def download(name, force, mirror):
    """Download, verify and unpack the MovieLens release NAME (see `recsys datasets`)."""
    from recsys.data.movielens import download as fetch
    from recsys.data.movielens import get, is_downloaded

    dataset = get(name)
    if is_downloaded(dataset) and not force:
        click.echo(f"{name} is already downloaded", err=True)
    path = fetch(dataset, force=force, mirror=mirror)
    click.echo(str(path))


@main.command("datasets")
def datasets_cmd():
    """List the MovieLens releases, their size and whether they are downloaded."""
    from recsys.data.movielens import cache_dir, describe

    click.echo("name             size        ratings     users    movies  check  downloaded")
    for row in describe():
        click.echo(f"{row['name']:<16} {row['size']:>9}  {row['ratings']:>11,}  "
                   f"{row['users']:>8,}  {row['movies']:>8,}  {row['check']:<5}  "
                   f"{row['downloaded']}")
    click.echo(f"cache: {cache_dir()} (set RECSYS_DATA to change)", err=True)


@main.command()
@click.argument("data")
@reader_options
def info(data, **opts):
    """Print users, items, ratings, density, histogram, activity and time span of DATA."""
    from recsys.data.info import format_summary, summarize

    ratings = _load_ratings(data, opts)
    click.echo(format_summary(summarize(ratings), ratings.source))


_SPLIT_METHODS = ("holdout", "kfold", "user", "user-last", "temporal", "ml100k")


@main.command()
@click.argument("data")
@click.option("-m", "--method", type=click.Choice(_SPLIT_METHODS), default="holdout",
              show_default=True,
              help="holdout: random ratings; kfold: k disjoint test folds; user: a fraction "
                   "of each user's ratings; user-last: each user's latest N; temporal: the "
                   "latest ratings overall (or from --at on); ml100k: the official folds.")
@click.option("-o", "--output", "prefix", required=True, metavar="PREFIX",
              help="Files are written as PREFIX.train.csv and PREFIX.test.csv "
                   "(PREFIX.NAME.train.csv per fold).")
@click.option("--fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.2, show_default=True, help="Test fraction.")
@click.option("-k", "--folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="Number of folds (kfold).")
@click.option("--last-n", type=click.IntRange(min=1), default=1, show_default=True,
              help="Latest ratings per user in the test set (user-last).")
@click.option("--at", type=int, default=None, metavar="UNIXTIME",
              help="Cut time: ratings from then on are the test set (temporal).")
@click.option("--fold", "fold_names", multiple=True, metavar="NAME",
              help="Official ml-100k folds to write (u1..u5, ua, ub; default: all).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--known-only", is_flag=True,
              help="Drop test ratings whose user or item is not in training, and say how many.")
@reader_options
def split(data, method, prefix, fraction, folds, last_n, at, fold_names, seed, known_only,
          **opts):
    """Split the ratings in DATA into training and test files."""
    from recsys.atomic import check_writable
    from recsys.data import split as sp

    if method == "ml100k":
        from recsys.data.movielens import resolve_data

        pairs = sp.ml100k_folds(resolve_data(data), fold_names or sp.ML100K_FOLDS)
    else:
        ratings = _load_ratings(data, opts)
        if method == "holdout":
            pairs = {"": sp.holdout(ratings, fraction, seed)}
        elif method == "kfold":
            pairs = {str(f + 1): pair for f, pair in enumerate(sp.kfold(ratings, folds, seed))}
        elif method == "user":
            pairs = {"": sp.per_user(ratings, fraction=fraction, seed=seed)}
        elif method == "user-last":
            pairs = {"": sp.per_user(ratings, last_n=last_n)}
        else:
            pairs = {"": sp.temporal(ratings, fraction=None if at is not None else fraction,
                                     at=at)}
    outputs = []
    for name, (train, test) in pairs.items():
        stem = f"{prefix}.{name}" if name else prefix
        if known_only:
            test, dropped = sp.keep_known(train, test)
            click.echo(f"{name or 'split'}: {dropped}", err=True)
        outputs.append((f"{stem}.train.csv", train, f"{stem}.test.csv", test))
    for train_path, _, test_path, _ in outputs:
        check_writable(train_path)
        check_writable(test_path)
    for train_path, train, test_path, test in outputs:
        sp.write_split(train, train_path)
        sp.write_split(test, test_path)
        click.echo(f"{train_path}\t{len(train):,} ratings")
        click.echo(f"{test_path}\t{len(test):,} ratings")


@main.command()
@click.option("-o", "--output", required=True, metavar="FILE", help="CSV file to write.")
@click.option("--shape", type=click.Choice(["ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m",
                                            "netflix"]),
              default=None, help="Users, items and ratings of a known data set.")
@click.option("--users", type=click.IntRange(min=1), default=None,
              help="Number of users.  [default: 6040, or the shape's]")
@click.option("--items", type=click.IntRange(min=1), default=None,
              help="Number of items.  [default: 3706, or the shape's]")
@click.option("--ratings", type=click.IntRange(min=1), default=None,
              help="Number of ratings.  [default: 1000000, or the shape's]")
@click.option("--rank", type=click.IntRange(min=1), default=10, show_default=True,
              help="Rank of the true model.")
@click.option("--noise", type=click.FloatRange(min=0), default=0.5, show_default=True,
              help="Std of the Gaussian noise on each rating.")
@click.option("--scale", type=click.Choice(["1-5", "half", "none"]), default="1-5",
              show_default=True,
              help="Whole stars, half stars, or continuous (read back with --scale none).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
def synth(output, shape, users, items, ratings, rank, noise, scale, seed):
    """Write synthetic MovieLens-shaped ratings from a known low-rank model to FILE."""
    from recsys.atomic import check_writable
    from recsys.data.synth import SHAPES, SynthSpec, generate, write_csv

    check_writable(output)
    spec = SynthSpec(rank=rank, noise=noise, scale=scale, seed=seed)
    if shape is not None:
        spec.n_users, spec.n_items, spec.n_ratings = SHAPES[shape]
    for name, value in (("n_users", users), ("n_items", items), ("n_ratings", ratings)):
        if value is not None:
            setattr(spec, name, value)
    generated, _ = generate(spec)
    write_csv(generated, output)
    click.echo(f"{output}\t{len(generated):,} ratings, {generated.n_users:,} users, "
               f"{generated.n_items:,} items", err=True)




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
        click.option("--reg", **REG_OPTION),
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
    from recsys.evaluation.evaluate import cross_validate
    from recsys.models.baselines import Biases, GlobalMean
    from recsys.models.registry import make_estimator

    params = _model_params(opts)
    seed = params.get("seed", defaults.SEED)
    if model_name == "funksvd":
        estimator = make_estimator(params)
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


def _regs(text):
    return [_reg_value(x) for x in text.split(",")] if text else None


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
@click.option("--reg", default=None, metavar="LIST", help="Values of reg (numbers or auto).")
@click.option("--reg-bias", default=None, metavar="LIST", help="Values of reg_bias.")
@click.option("--init-std", default=None, metavar="LIST", help="Values of init_std.")
@click.option("--grid", "full_grid", is_flag=True,
              help="Try every combination (default: --n-iter random ones).")
@click.option("--n-iter", type=click.IntRange(min=1), default=10, show_default=True,
              help="Random combinations to try.")
@click.option("--folds", type=click.IntRange(min=2), default=3, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the draw, the folds and the models.")
@click.option("--method", type=click.Choice(defaults.METHODS), default=None,
              help="Training method (fixed during the search).")
@click.option("-j", "--jobs", "n_jobs", type=click.IntRange(min=1), default=None,
              help="Threads per fit.")
@click.option("--save-best", default=None, metavar="CONFIG.json",
              help="Write the best parameters here (for `recsys train --config`).")
@reader_options
def tune(data, full_grid, n_iter, folds, seed, method, n_jobs, save_best, **opts):
    """Search factors, lr, reg and epochs by cross-validation; print a ranked table.

    Lists not given keep the default search space (see recsys/evaluation/tune.py).
    """
    from recsys.evaluation.tune import DEFAULT_SPACE, save_config, search

    space = dict(DEFAULT_SPACE)
    for name, parse in (("n_factors", _ints), ("n_epochs", _ints), ("lr", _floats),
                        ("reg", _regs), ("reg_bias", _floats), ("init_std", _floats)):
        values = parse(opts.pop(name))
        if values:
            space[name] = values
    if save_best:
        from recsys.atomic import check_writable

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
