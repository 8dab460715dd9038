"""What several commands do: read ratings, report skipped lines, load a model, print a
ranked item table."""

from __future__ import annotations

import click

from recsys.cli.options import _read_kwargs


def _load_ratings(path, opts: dict):
    from recsys.data.movielens import resolve_data
    from recsys.data.readers import BadLines, read_ratings

    report = BadLines()
    ratings = read_ratings(resolve_data(path), report=report, **_read_kwargs(opts))
    _report_bad(report)
    return ratings


def _input_path(arg):
    """The file a DATA argument names (a registry name resolved), for comparing outputs
    with it."""
    from recsys.data.movielens import resolve_data
    from recsys.errors import RecsysError

    try:
        return resolve_data(arg)
    except RecsysError:
        return arg


def _load_events(path, opts: dict):
    """Implicit feedback (``read_events``) with the reader options that apply to it."""
    from recsys.data.movielens import resolve_data
    from recsys.data.readers import BadLines, read_events

    report = BadLines()
    kwargs = {k: v for k, v in _read_kwargs(opts).items() if k not in ("scale", "duplicates")}
    events = read_events(resolve_data(path), report=report, **kwargs)
    _report_bad(report)
    return events


def _report_bad(report) -> None:
    if report.count:
        click.echo(f"skipped {report.count} bad line{'s' if report.count > 1 else ''}; first:",
                   err=True)
        for example in report.examples:
            click.echo(f"  {example}", err=True)


def _load_model(path):
    from recsys.models.registry import load

    return load(path)


def _print_model_info(path) -> None:
    """The model card: kind, sizes, parameters, format, training data, regularization
    chosen, history and lineage, as aligned lines."""
    from recsys.models.registry import load

    model = load(path)
    state, m = model.state_, model.manifest_
    lineage = state.lineage
    lines = [f"model             {type(model).__name__} ({path})",
             f"written           {m.get('created')} by recsys {lineage.version or 'before 0.1'}",
             f"users             {state.n_users:,}",
             f"items             {state.n_items:,}",
             f"factors           {state.n_factors} {state.dtype}",
             f"rating scale      {state.rating_scale[0]:g}..{state.rating_scale[1]:g}",
             "params            " + " ".join(f"{k}={v}" for k, v in model.get_params().items()),
             f"format            {m.get('format')} version {m.get('format_version')}"]
    summary = model.train_summary_ or {}
    if summary:
        lines.append(f"training data     {summary.get('ratings', 0):,} ratings, "
                     f"{summary.get('users', 0):,} users, {summary.get('items', 0):,} items, "
                     f"mean rating {summary.get('mean_rating') or 0:.4f}")
    if model.report_.reg is not None:
        trials = ", ".join(f"{r:g}: {e:.4f}" for r, e in model.report_.reg_trials)
        lines.append(f"reg chosen        {model.report_.reg:g}" + (f" (trials {trials})"
                                                                  if trials else ""))
    history = model.history_
    if history:
        last = history[-1]
        valid = last.get("valid_rmse")
        lines.append(f"history           {len(history)} epochs, best kept "
                     f"{model.best_epoch_}; last train RMSE {last.get('train_rmse', 0):.4f}"
                     + (f", valid RMSE {valid:.4f}" if valid is not None else ""))
    lines.append(f"parent            {lineage.parent or 'none (trained from scratch)'}")
    for n, entry in enumerate(lineage.data, 1):
        if entry.get("kind") == "ratings log":
            how = "update from" if entry.get("update") else "live ratings of"
            lines.append(f"data {n:<12} {how} the ratings log, {entry.get('ratings', 0):,} "
                         f"ratings through seq {entry.get('through', 0)}, sha256 "
                         f"{str(entry.get('sha256', ''))[:16]}... ({entry.get('source')})")
            continue
        role = "update" if entry.get("update") else "trained on"
        lines.append(f"data {n:<12} {role} {entry.get('ratings', 0):,} ratings, "
                     f"{entry.get('users', 0):,} users, {entry.get('items', 0):,} items, "
                     f"sha256 {str(entry.get('sha256', ''))[:16]}... "
                     f"({entry.get('source') or 'in memory'})")
    click.echo("\n".join(lines))


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
