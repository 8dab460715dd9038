"""Options shared by several commands, and the parsing of their values.

The model options are made from the estimators' parameter table
(``recsys.models.params``): the same names, defaults, ranges and help, so ``recsys train
--help`` documents the model. Only click and that table are imported here, so ``recsys
--help`` stays fast; what reads data or builds models is imported inside the functions
that need it.
"""

from __future__ import annotations

import click

from recsys.models.params import OBJECTIVES, PARAMS, Param

# ----------------------------------------------------------------------------- reader


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
        click.option("--duplicates", type=click.Choice(["error", "last", "mean", "sum"]),
                     default="error", show_default=True,
                     help="What to do with a second rating of the same user and item "
                          "(sum: add them up, as counts)."),
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


def deprecated_alias(flag: str, name: str, use: str, **kwargs):
    """A hidden option ``flag`` still setting ``name`` for one release, with a warning on
    stderr: ``-k`` now always means latent features."""

    def moved(ctx, param, value):
        if value is not None:
            click.echo(f"recsys: {flag} is deprecated here, use {use}", err=True)
            ctx.params[name] = value
        return value

    return click.option(flag, f"_{name}_old", hidden=True, default=None, expose_value=False,
                        callback=moved, is_eager=False, **kwargs)


# ----------------------------------------------------------------------------- model


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


class _Reg(click.ParamType):
    """The value of --reg: 'auto' or a finite number >= 0."""

    name = "reg"

    def get_metavar(self, param, ctx=None):
        return "auto|FLOAT"

    def convert(self, value, param, ctx):
        try:
            return _reg_value(click.STRING.convert(value, param, ctx))
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


class _FloatOrNone(click.ParamType):
    """A finite number, or 'none'."""

    name = "float|none"

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value.strip().lower() == "none":
            return "none"
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if number != number or number in (float("inf"), float("-inf")):
            self.fail(f"expected a number or 'none', not {value!r}", param, ctx)
        return number


def _click_type(spec: Param):
    if spec.kind == "reg":
        return _Reg()
    if spec.kind == "float" and spec.optional and spec.metavar == "FLOAT|none":
        return _FloatOrNone()
    if spec.kind == "choice":
        return click.Choice(list(spec.cli_choices or spec.choices))
    if spec.kind == "int":
        return click.IntRange(min=spec.low, max=spec.high)
    return click.FloatRange(min=spec.low, max=spec.high, min_open=spec.low_open)


def param_option(name: str, help: str | None = None):
    """The option of parameter ``name`` (flags, type, range and help from the table); its
    default is None, meaning the estimator's default (or --config's)."""
    spec = PARAMS[name]
    return click.option(*spec.flags, name, type=_click_type(spec), default=None,
                        metavar=spec.metavar if spec.kind != "reg" else None,
                        help=help or spec.help_text())


#: The model options of ``train``, in the order of its help.
MODEL_OPTIONS = ("n_factors", "n_epochs", "lr", "reg", "reg_bias", "init_std", "seed", "dtype",
                 "n_jobs", "device")
#: The training-variant options that follow them, then those of the other objectives.
VARIANT_OPTIONS = ("method", "reg_implicit", "lr_schedule", "lr_decay", "warmup_epochs",
                   "warmup_lr", "warmup_reg", "early_stopping")
OBJECTIVE_OPTIONS = ("confidence", "unobserved_weight", "threshold", "cg_steps",
                     "ranking_factors", "ranking_weight")
OBJECTIVE_HELP = ("rating: FunkSVD fitted to the ratings (SGD); ranking: RankingMF, top-N "
                  "lists from the chosen pairs against all others (weighted all-pairs loss; "
                  "its defaults: -k 64, -t 15, --reg 0.02 per unit of a row's weight); "
                  "hybrid: HybridMF, both in one model (predictions from the rating part, "
                  "lists from both).  "
                  "[default: rating]")


def model_options(skip=(), helps=None):
    """A decorator adding the MODEL_OPTIONS but those named in ``skip``, in table order,
    with the help of those named in ``helps`` replaced."""
    helps = helps or {}

    def decorate(func):
        for name in reversed(MODEL_OPTIONS):
            if name not in skip:
                func = param_option(name, helps.get(name))(func)
        return func

    return decorate


def objective_option(func):
    return click.option("--objective", type=click.Choice(OBJECTIVES), default=None,
                        help=OBJECTIVE_HELP)(func)


def variant_options(func):
    """The training-variant options (method, schedule, early stopping), the objective and
    its options, and --config."""
    func = click.option("--config", "config_path", default=None, metavar="CONFIG.json",
                        help="Parameters saved by `recsys tune --save-best`; options given "
                             "here override them.")(func)
    for name in reversed(OBJECTIVE_OPTIONS):
        func = param_option(name)(func)
    func = objective_option(func)
    for name in reversed(VARIANT_OPTIONS):
        func = param_option(name)(func)
    return func


def _model_params(opts: dict) -> dict:
    """Pop the model parameters from ``opts``: --config first, explicit options over it."""
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
                params[name] = None if value == "none" else value
    return params


# ----------------------------------------------------------------------------- lists


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
