"""Mutation fuzzing of the parsers and the model loader (used by tests and scripts/fuzz.py).

Inputs are valid files mutated at random (bit flips, byte insertions and deletions,
truncation, separator swaps, special values) plus raw random bytes; model files also get
structured mutations (``recsys.testing.hostile``: arrays of other dtypes under a manifest
that agrees, huge shapes in .npy headers, duplicate, foreign and truncated members, huge
numbers in the manifest, values the format does not allow). The contract: reading a
ratings file raises nothing but ``DataError``, loading a model nothing but ``ModelError``.
"""

from __future__ import annotations

import numpy as np

SEEDS = [
    b"1\t1\t5\t881250949\n1\t2\t3\t881250950\n2\t1\t4\t881250951\n",
    b"1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n",
    b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n2,1,0.5,9\n",
    b"user,item,rating\nann,x,5\nbob,y,3\nann,y,4\n",
    b"\xef\xbb\xbfuser;item;rating\r\n1;2;3\r\n2;3;4\r\n",
    b'"user","item","rating"\n"a,1","x ""y""",4.5\n"b","y",3\n',
]
SPECIALS = [b"nan", b"inf", b"-1", b"", b"::", b"\t", b",", b"\n", b"\r\n", b"\x00", b"\xff",
            b"99999999999999999999999", b"1e309", b"\xef\xbb\xbf", b'"', b" ", b"-", b"0x10",
            b"\xe9", b"1.5.5", b"0_4", b"1e39", b"Infinity", b'"a,b"', b'""', b'"x"y', b"\r",
            b"\xc2\xa0", b"\xd9\xa3", b"9" * 5000]


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One random mutation (or a few) of ``data``."""
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        op = int(rng.integers(0, 7))
        pos = int(rng.integers(0, len(buf) + 1))
        if op == 0 and buf:  # flip a bit
            pos = min(pos, len(buf) - 1)
            buf[pos] ^= 1 << int(rng.integers(0, 8))
        elif op == 1:  # insert a special token
            token = SPECIALS[int(rng.integers(0, len(SPECIALS)))]
            buf[pos:pos] = token
        elif op == 2 and buf:  # delete a run
            buf[pos:pos + int(rng.integers(1, 8))] = b""
        elif op == 3:  # truncate
            del buf[pos:]
        elif op == 4:  # duplicate a line
            lines = bytes(buf).split(b"\n")
            k = int(rng.integers(0, len(lines)))
            lines.insert(k, lines[k])
            buf = bytearray(b"\n".join(lines))
        elif op == 5:  # replace a byte with a random one
            if buf:
                buf[min(pos, len(buf) - 1)] = int(rng.integers(0, 256))
        else:  # swap separators
            a, b = (SPECIALS[i] for i in rng.integers(4, 7, 2))
            buf = bytearray(bytes(buf).replace(a, b))
    return bytes(buf)


def random_input(rng: np.random.Generator) -> bytes:
    if rng.random() < 0.1:
        return rng.bytes(int(rng.integers(0, 200)))
    return mutate(SEEDS[int(rng.integers(0, len(SEEDS)))], rng)


def mutate_model(data: bytes, rng: np.random.Generator) -> bytes:
    """A mutated model file: byte mutations, a structured mutation, or both."""
    from recsys.testing.hostile import structured_mutation

    choice = rng.random()
    if choice < 0.4:
        return mutate(data, rng)
    data = structured_mutation(data, rng)
    return mutate(data, rng) if choice > 0.8 else data
