"""Commands that measure models: evaluate, cv, tune."""

from __future__ import annotations

import click

from recsys.cli.common import _input_path, _load_model, _load_ratings
from recsys.cli.options import (
    _floats,
    _ints,
    _model_params,
    _regs,
    deprecated_alias,
    model_options,
    objective_option,
    reader_options,
    variant_options,
)
from recsys.models.params import METHODS, PARAMS


@click.command()
@click.argument("model_path", metavar="MODEL")
@click.argument("test")
@click.option("--strict", is_flag=True, help="Unknown users or items in TEST are an error.")
@click.option("--ranking", is_flag=True,
              help="Also top-k metrics: held-out items rated >= --threshold are the relevant "
                   "ones.")
@click.option("-n", "ranking_k", type=click.IntRange(1, 10_000), default=10,
              show_default=True, help="List length of the ranking metrics.")
@deprecated_alias("-k", "ranking_k", "-n", type=click.IntRange(1, 10_000))
@click.option("--threshold", "relevant", type=float, default=4.0, show_default=True,
              help="Held-out ratings at or above this are relevant (--ranking).")
@reader_options
def evaluate(model_path, test, strict, ranking, ranking_k, relevant, **opts):
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

        for name, value in ranking_metrics(model, ratings, ranking_k, relevant).items():
            click.echo(f"{name}\t{value:.4f}" if isinstance(value, float) else
                       f"{name}\t{value}")
    if unknown_users or unknown_items:
        click.echo(f"fallbacks\t{unknown_users} ratings of unknown users, "
                   f"{unknown_items} of unknown items (biases used)", err=True)


def _print_cv(result) -> None:
    mean, std = result["mean"], result["std"]
    skip = {"fold", "ratings", "unknown_users", "unknown_items", "ranked_users"}
    click.echo("metric\tmean\tstd")
    for name in mean:
        if name not in skip:
            click.echo(f"{name}\t{mean[name]:.4f}\t{std[name]:.4f}")


#: cv shares train's model options but --dtype; its seed also draws the folds.
_CV_MODEL_HELP = {"seed": "Random seed of the model and of the folds.  "
                          f"[default: {PARAMS['seed'].default}]"}


@click.command()
@click.argument("data")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="Number of random folds.")
@click.option("--model", "model_name", type=click.Choice(["funksvd", "biases", "biases-sgd",
                                                          "global-mean"]),
              default="funksvd", show_default=True, help="What to cross-validate.")
@click.option("--ranking-k", type=click.IntRange(1, 10_000), default=None, metavar="K",
              help="Also top-K ranking metrics (held-out items rated >= 4 are relevant).")
@model_options(skip=("dtype",), helps=_CV_MODEL_HELP)
@variant_options
@reader_options
def cv(data, folds, model_name, ranking_k, **opts):
    """K-fold cross-validation on DATA: mean and std of RMSE, MAE, times (and ranking)."""
    from recsys.evaluation.evaluate import cross_validate
    from recsys.models.baselines import Biases, GlobalMean
    from recsys.models.registry import make_estimator

    params = _model_params(opts)
    seed = params.get("seed", PARAMS["seed"].default)
    if model_name == "funksvd":
        from recsys.training.backends import require as require_backend

        estimator = make_estimator(params)
        require_backend(getattr(estimator, "device", "cpu"))
    elif model_name == "global-mean":
        estimator = GlobalMean()
    else:
        estimator = Biases(method="sgd" if model_name == "biases-sgd" else "damped",
                           seed=seed)
    ratings = _load_ratings(data, opts)
    click.echo(f"{len(ratings):,} ratings; {folds} folds; {estimator!r}", err=True)
    from recsys.progress import bar

    with bar(folds, "cv", "fold") as progress:
        def report(scores):
            progress.echo(f"fold {scores['fold']}: RMSE {scores['rmse']:.4f}  MAE "
                          f"{scores['mae']:.4f}  fit {scores['fit_time']:.2f}s")
            progress.update()

        scores = cross_validate(estimator, ratings, folds=folds, seed=seed,
                                ranking_k=ranking_k, callback=report)
    _print_cv(scores)


@click.command()
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
              help="Random combinations (optuna: trials) to try.")
@click.option("--engine", type=click.Choice(["grid", "optuna"]), default="grid",
              show_default=True,
              help="grid: the grid or random points by cross-validation; optuna: TPE trials "
                   "on a 80/20 split, pruned per epoch (needs optuna).")
@click.option("--folds", type=click.IntRange(min=2), default=3, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the draw, the folds and the models.")
@click.option("--unobserved-weight", default=None, metavar="LIST",
              help="Values of unobserved_weight (ranking).")
@click.option("--confidence", default=None, metavar="LIST", help="Values of confidence (ranking).")
@click.option("--method", type=click.Choice(METHODS), default=None,
              help="Training method (fixed during the search).")
@objective_option
@click.option("--metric", type=click.Choice(["rmse", "ndcg"]), default=None,
              help="Rank the points by RMSE or by NDCG@K (held-out ratings >= 4 relevant).  "
                   "[default: ndcg for --objective ranking, else rmse]")
@click.option("--ranking-k", type=click.IntRange(1, 10_000), default=10, show_default=True,
              metavar="K", help="List length of --metric ndcg.")
@click.option("-j", "--jobs", "n_jobs", type=click.IntRange(min=1), default=None,
              help="Threads per fit.")
@click.option("--save-best", default=None, metavar="CONFIG.json",
              help="Write the best parameters here (for `recsys train --config`).")
@reader_options
def tune(data, full_grid, n_iter, engine, folds, seed, method, objective, metric, ranking_k,
         n_jobs, save_best, **opts):
    """Search factors, lr, reg and epochs by cross-validation; print a ranked table.

    Lists not given keep the default search space (recsys.evaluation.tune; the ranking
    objective's: factors, reg, unobserved weight and confidence).
    """
    from recsys.evaluation.tune import DEFAULT_SPACE, RANKING_SPACE, save_config, search

    ranking = objective == "ranking"
    space = dict(RANKING_SPACE if ranking else DEFAULT_SPACE)
    metric = metric or ("ndcg" if ranking else "rmse")
    for name, parse in (("n_factors", _ints), ("n_epochs", _ints), ("lr", _floats),
                        ("reg", _floats if ranking else _regs), ("reg_bias", _floats),
                        ("init_std", _floats), ("unobserved_weight", _floats),
                        ("confidence", _floats)):
        values = parse(opts.pop(name))
        if values:
            space[name] = values
    if save_best:
        from recsys.atomic import check_writable

        check_writable(save_best, inputs=[_input_path(data)])
    base = {"seed": seed}
    if method:
        base["method"] = method
    if objective:
        base["objective"] = objective
    if n_jobs:
        base["n_jobs"] = n_jobs
    ratings = _load_ratings(data, opts)
    names = list(space)

    from recsys.evaluation.tune import grid
    from recsys.progress import bar

    trials = n_iter if engine == "optuna" else len(grid(space))
    if not full_grid and engine != "optuna":
        trials = min(trials, n_iter)
    with bar(trials, "tune", "trial") as progress:
        def report(row):
            shown = " ".join(f"{n}={row['params'][n]}" for n in names)
            score = f"ndcg@{ranking_k} {row['ndcg']:.4f}" if metric == "ndcg" else \
                f"rmse {row['rmse']:.4f}"
            progress.echo(f"  {score}  {shown}")
            progress.update()

        if engine == "optuna":
            from recsys.evaluation.tune import optuna_search

            rows = optuna_search(ratings, space, n_iter, seed, base, report, metric,
                                 ranking_k)
        else:
            rows = search(ratings, space, None if full_grid else n_iter, folds, seed, base,
                          report, metric, ranking_k)
    if metric == "ndcg":
        click.echo(f"rank\tndcg@{ranking_k}\tstd\trmse\tfit_s\t" + "\t".join(names))
        for rank, row in enumerate(rows, 1):
            click.echo(f"{rank}\t{row['ndcg']:.4f}\t{_num(row['ndcg_std'])}\t{row['rmse']:.4f}\t"
                       f"{row['fit_time']:.2f}\t"
                       + "\t".join(str(row["params"][n]) for n in names))
    else:
        click.echo("rank\trmse\tstd\tmae\tfit_s\t" + "\t".join(names))
        for rank, row in enumerate(rows, 1):
            click.echo(f"{rank}\t{row['rmse']:.4f}\t{_num(row['rmse_std'])}\t{row['mae']:.4f}\t"
                       f"{row['fit_time']:.2f}\t"
                       + "\t".join(str(row["params"][n]) for n in names))
    if save_best:
        best = rows[0]
        params = {k: v for k, v in best["params"].items() if k != "n_jobs"}
        score = {"rmse": best["rmse"], "rmse_std": best["rmse_std"], "folds": folds,
                 "data": str(data)}
        if metric == "ndcg":
            score.update({f"ndcg@{ranking_k}": best["ndcg"], "ndcg_std": best["ndcg_std"]})
        save_config(save_best, params, score)
        click.echo(f"best parameters written to {save_best}", err=True)


def _num(value) -> str:
    return "-" if value is None else f"{value:.4f}"
