"""A long fuzz campaign over the ratings parsers and the model loader (run outside CI).

    python scripts/fuzz.py --inputs 100000 [--seed 0] [--model-share 0.2]

Each input is a mutated valid file (see recsys.testing.fuzz; model files also get the
structured mutations of recsys.testing.hostile) or random bytes. Reading a ratings
file may raise only DataError, loading a model only ModelError; anything else is a
finding, printed with the input that caused it (saved under --findings).
"""

import argparse
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np

from recsys.data.readers import read_pairs, read_ratings
from recsys.data.synth import SynthSpec, generate
from recsys.errors import DataError, ModelError
from recsys.models.funksvd import FunkSVD
from recsys.models.registry import load, save
from recsys.testing.fuzz import mutate_model, random_input


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-share", type=float, default=0.2)
    parser.add_argument("--findings", default="fuzz-findings")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    work = Path(tempfile.mkdtemp(prefix="recsys-fuzz-"))
    ratings, _ = generate(SynthSpec(n_users=40, n_items=30, n_ratings=300, rank=3, seed=1))
    model_file = work / "model.npz"
    save(FunkSVD(n_factors=3, n_epochs=2).fit(ratings), model_file)
    model_bytes = model_file.read_bytes()

    outcomes = Counter()
    findings = []
    start = time.perf_counter()
    target = work / "input"
    for n in range(args.inputs):
        is_model = rng.random() < args.model_share
        data = mutate_model(model_bytes, rng) if is_model else random_input(rng)
        target.write_bytes(data)
        expected = ModelError if is_model else DataError
        try:
            if is_model:
                load(target)
            elif n % 2:
                read_ratings(target, duplicates="last")
            else:
                read_pairs(target)
            outcomes["model ok" if is_model else "parsed ok"] += 1
        except expected:
            outcomes["model rejected" if is_model else "parse rejected"] += 1
        except Exception as exc:  # noqa: BLE001 - exactly what we hunt for
            outcomes["FINDING"] += 1
            findings.append((n, data, traceback.format_exc()))
            print(f"finding at input {n}: {type(exc).__name__}: {exc}")
        if (n + 1) % 10_000 == 0:
            print(f"{n + 1:,} inputs, {time.perf_counter() - start:.0f} s: {dict(outcomes)}",
                  flush=True)
    if findings:
        out = Path(args.findings)
        out.mkdir(exist_ok=True)
        for n, data, trace in findings:
            (out / f"input-{n}.bin").write_bytes(data)
            (out / f"input-{n}.txt").write_text(trace)
    print(f"done: {args.inputs:,} inputs in {time.perf_counter() - start:.0f} s; "
          f"{dict(outcomes)}; findings: {len(findings)}")


if __name__ == "__main__":
    main()
