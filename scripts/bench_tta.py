"""Time to accuracy: recsys's whole fit against LIBMF-AVX's time to the same accuracy.

For each size (generated MovieLens-shaped ratings, seed 1, 2% held out): LIBMF-AVX (built
from source, ``scripts/libmf_avx.py``) over a small grid of its learning rate and L2
(k=128, 32 iterations); its best validation RMSE is the target; then, at its best setting,
its fewest iterations to within 0.5% of the target (the first of 1, 2, 4, ... 32 that
gets there, then a bisection below it) give its time to reach it.
recsys: the whole ``FunkSVD(...).fit`` (reg auto and everything included) of each
configuration compared, its time and final RMSE, and the time of its final fit alone.
Threads 1 and 2; one-thread times in CPU seconds of the process, two-thread in wall
seconds; each timing repeated ``--repeats`` times, the median and spread printed. LIBMF's
fit to its target is timed again in every round of the recsys fits, first, and the ratios
are those of the fits of the same round (median and spread over the rounds).

    python scripts/bench_tta.py --sizes 1m --repeats 3
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import libmf_avx  # noqa: E402
from benchdoc import write_section  # noqa: E402

from recsys import FunkSVD  # noqa: E402
from recsys.data.synth import SHAPES, SynthSpec, generate  # noqa: E402
from recsys.training import autoreg  # noqa: E402

SIZES = {"1m": "ml-1m", "10m": "ml-10m", "100m": "netflix"}
#: name: (parameters, the learning-rate multiple of reg auto's trials)
CONFIGS = {
    "recsys defaults": ({}, autoreg.TRIAL_SPEEDUP),
    "recsys previous defaults (no warm-up, 35 epochs, lr 0.03 x 0.94) (before)":
        (dict(warmup_epochs=0, n_epochs=35, lr_decay=0.94), autoreg.TRIAL_SPEEDUP),
    "recsys adagrad (lr 0.1, k 128, reg 0.05, init 0.1, 10 epochs)":
        (dict(lr_schedule="adagrad", lr=0.1, n_factors=128, reg=0.05, init_std=0.1,
              n_epochs=10), autoreg.TRIAL_SPEEDUP),
}


def clock(threads):
    return time.process_time if threads == 1 else time.perf_counter


def data(size):
    n_users, n_items, n = SHAPES[SIZES[size]]
    ratings, _ = generate(SynthSpec(n_users=n_users, n_items=n_items, n_ratings=n, seed=1))
    test = np.random.default_rng(2).random(len(ratings)) < 0.02
    return ratings.subset(~test), ratings.subset(test)


def libmf_fit(module, X, threads, iters, eta, l2):
    model = module.MF(k=128, nr_threads=threads, nr_bins=max(20, 2 * threads + 1),
                      nr_iters=iters, lambda_p1=0.0, lambda_q1=0.0, lambda_p2=l2,
                      lambda_q2=l2, eta=eta, quiet=True)
    now = clock(threads)
    start = now()
    model.fit(X)
    return now() - start, model.p_factors(), model.q_factors(), float(model.model.b)


def libmf_seconds(module, X, threads, iters, eta, l2) -> float:
    """Seconds of one LIBMF fit."""
    return libmf_fit(module, X, threads, iters, eta, l2)[0]


def libmf_reach(module, X, valid, threads, eta, l2, target, repeats):
    """(iterations, times, RMSE) of LIBMF's fewest iterations that reach ``target``: the
    first of 1, 2, 4, ... 32 that does, then a bisection below it; None if 32 do not."""
    def timed(iters):
        times, rmse = [], None
        for _ in range(repeats):
            seconds, P, Q, b = libmf_fit(module, X, threads, iters, eta, l2)
            times.append(seconds)
            rmse = libmf_avx.rmse(P, Q, b, *valid)
        return iters, times, rmse

    low, reach = 0, None
    for iters in (1, 2, 4, 8, 16, 32):
        fit = timed(iters)
        if fit[2] <= target:
            reach = fit
            break
        low = iters
    while reach is not None and reach[0] - low > 1:
        fit = timed((low + reach[0]) // 2)
        if fit[2] <= target:
            reach = fit
        else:
            low = fit[0]
    return reach


def spread(values):
    return f"{statistics.median(values):.2f} s ({min(values):.2f}..{max(values):.2f}, " \
           f"{len(values)} runs)"


def recsys_fits(say, configs, repeats, threads, size, train, valid, best=None, reach=None,
                libmf=None):
    """Time each configuration's whole fit ``repeats`` times, alternating (with LIBMF's fit
    to its target, ``libmf()``, first in each round where given, so drift hits both
    alike); print each line, against LIBMF's best RMSE and its time to target in the same
    rounds; {name: whole-fit times}."""
    whole = {name: [] for name in configs}
    finals = {name: [] for name in configs}
    theirs = []
    last = {}
    for _ in range(repeats):
        if libmf is not None:
            theirs.append(libmf())
        for name, (params, speedup) in configs.items():
            autoreg.TRIAL_SPEEDUP = speedup
            model = FunkSVD(**params, n_jobs=threads)
            now = clock(threads)
            start = now()
            model.fit(train)
            whole[name].append(now() - start)
            # the final fit's own epochs (the warm-up it starts from, trained once for
            # reg auto's trials, counts as the trials')
            finals[name].append(sum(h["seconds"] for h in model.history_
                                    if not h.get("reg_trial")))
            rmse = model.state_.factors.rmse(valid.users, valid.items, valid.values,
                                             *model.rating_scale_)
            last[name] = (rmse, model.reg_)
    autoreg.TRIAL_SPEEDUP = CONFIGS["recsys defaults"][1]
    if theirs:
        say(f"{size} {threads}t LIBMF, {reach[0]} iterations, alternated with the fits "
            f"below: {spread(theirs)}")
    for name, times in whole.items():
        rmse, reg = last[name]
        against = "" if best is None else f" ({rmse / best - 1:+.2%} of LIBMF's best)"
        ratio = ""
        if theirs:
            pairs = [a / b for a, b in zip(times, theirs, strict=True)]
            final = [a / b for a, b in zip(finals[name], theirs, strict=True)]
            ratio = f"; whole / LIBMF's time to target {ratios(pairs)}, final fit / it " \
                f"{ratios(final)}"
        say(f"{size} {threads}t {name}: whole fit {spread(times)}, final fit's "
            f"epochs {spread(finals[name])}, RMSE {rmse:.4f}{against}{ratio}; reg {reg:g}")
    return whole


def ratios(values):
    return f"{statistics.median(values):.2f}x ({min(values):.2f}..{max(values):.2f}, " \
           f"{len(values)} alternated pairs)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1m")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-before", action="store_true",
                        help="leave out the previous defaults (the slowest fit)")
    parser.add_argument("--recsys-only", action="store_true",
                        help="time the recsys configurations alone (no LIBMF grid: 100M)")
    parser.add_argument("--output", default=None,
                        help="markdown file whose 'bench_tta' section is rewritten")
    args = parser.parse_args(argv)
    configs = {name: c for name, c in CONFIGS.items()
               if not (args.skip_before and "(before)" in name)}
    out = []

    def say(line):
        out.append(line)
        print(line, flush=True)

    if not args.recsys_only:
        wrapper, library = libmf_avx.build()
        mf = libmf_avx.load(wrapper, library, "libmf_avx_wrapper")
    for size in args.sizes.split(","):
        train, valid = data(size)
        if args.recsys_only:
            say(f"# {size}: {len(train):,} training ratings; LIBMF not run")
            for threads in (int(t) for t in args.threads.split(",")):
                recsys_fits(say, configs, args.repeats, threads, size, train, valid)
            continue
        X = np.column_stack([train.users, train.items, train.values]).astype(np.float32)
        v = (valid.users, valid.items, valid.values.astype(np.float64))
        grid = {}
        for eta in (0.05, 0.1, 0.2):
            for l2 in (0.02, 0.05, 0.1):
                _, P, Q, b = libmf_fit(mf, X, 2, 32, eta, l2)
                grid[(eta, l2)] = libmf_avx.rmse(P, Q, b, *v)
        (eta, l2), best = min(grid.items(), key=lambda kv: kv[1])
        target = best * 1.005
        say(f"# {size}: {len(train):,} training ratings; LIBMF best RMSE {best:.4f} at eta "
            f"{eta}, l2 {l2} (32 iterations); target {target:.4f}")
        for threads in (int(t) for t in args.threads.split(",")):
            reach = libmf_reach(mf, X, v, threads, eta, l2, target, args.repeats)
            libmf = None
            if reach:
                say(f"{size} {threads}t LIBMF: {reach[0]} iterations to RMSE {reach[2]:.4f}"
                    f" in {spread(reach[1])} (the search)")
                libmf = functools.partial(libmf_seconds, mf, X, threads, reach[0], eta, l2)
            whole = recsys_fits(say, configs, args.repeats, threads, size, train, valid,
                                best, reach, libmf)
            if args.skip_before:
                continue
            now, before = (whole[n] for n in list(CONFIGS)[:2])
            ratios = [a / b for a, b in zip(now, before, strict=True)]
            say(f"{size} {threads}t default fit / the previous defaults' fit: "
                f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}..{max(ratios):.2f}, "
                f"{len(ratios)} alternated pairs)")
    if args.output:
        import datetime as dt

        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        text = "\n".join(["## Time to accuracy", "", f"Measured {stamp} by `python "
                          f"scripts/bench_tta.py --sizes {args.sizes} --repeats "
                          f"{args.repeats} --threads {args.threads}"
                          f"{' --skip-before' if args.skip_before else ''}`: one-thread "
                          "times are CPU seconds of the process, two-thread ones wall "
                          "seconds; LIBMF's fewest iterations to its target are found by "
                          "bisection, then its fit to the target is timed again first in "
                          "every round of the recsys fits, and each ratio is a median "
                          "over the rounds of the fits of one round.", "", "```",
                          *out, "```"])
        write_section("bench_tta", text + "\n", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
