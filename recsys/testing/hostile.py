"""Hostile model files, built from a valid one: arrays of other dtypes under a manifest
that agrees with them, .npy headers declaring huge shapes, deflate bombs, duplicate and
foreign members, truncated members, manifests with huge numbers. Used by
tests/test_hostile_model_files.py, the fuzzer (``recsys.testing.fuzz``) and
scripts/bench_hostile_model_files.py. Every one of them must load as a ``ModelError``.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import warnings
import zipfile
import zlib

import numpy as np

MANIFEST = "manifest.json"
#: A digest no array has: for members whose checksum the loader must never get to.
FAKE_SHA256 = "0" * 64


def read_members(data: bytes) -> tuple[dict, dict]:
    """(manifest, {member name: bytes}) of a model file's bytes (the last of duplicates)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    return json.loads(members[MANIFEST]), members


def npy(array: np.ndarray) -> bytes:
    """``array`` as .npy bytes (object arrays pickled: the loader must never unpickle them)."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def npy_header(shape, dtype, fortran: bool = False) -> bytes:
    """A .npy header (format 1.0) declaring ``shape`` and ``dtype``, without data."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                 "fortran_order": fortran, "shape": tuple(shape)})
    return buffer.getvalue()


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def zip_bytes(manifest: dict | bytes, members: dict, compression: dict | None = None,
              extra=()) -> bytes:
    """A zip of the manifest and ``members`` ({name: bytes}; a manifest among them is
    left out), then the (name, bytes) pairs of ``extra`` (which may repeat a name), each
    stored unless ``compression`` names another method for it."""
    compression = compression or {}
    pairs = [*members.items(), *(("\0" + n, b) for n, b in extra)]
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of duplicate names
        with zipfile.ZipFile(out, "w") as zf:
            raw = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
            zf.writestr(MANIFEST, raw, compress_type=compression.get(MANIFEST, 0))
            for name, blob in pairs:
                if name != MANIFEST:
                    name = name.lstrip("\0")
                    zf.writestr(name, blob, compress_type=compression.get(name, 0))
    return out.getvalue()


def with_arrays(data: bytes, arrays: dict, consistent: bool = True, edit=None) -> bytes:
    """The model file with arrays replaced ({name: array}); with ``consistent`` the manifest
    says the new dtype, shape and checksum, so only the loader's own rules can refuse it.
    ``edit(manifest)`` may change the manifest further."""
    manifest, members = read_members(data)
    for name, array in arrays.items():
        members[f"{name}.npy"] = npy(array)
        if consistent:
            manifest["arrays"][name] = {"dtype": array.dtype.str, "shape": list(array.shape),
                                        "sha256": digest(array)}
    if edit is not None:
        edit(manifest)
    return zip_bytes(manifest, members)


def with_manifest(data: bytes, edit) -> bytes:
    """The model file with ``edit(manifest)`` applied to its manifest."""
    manifest, members = read_members(data)
    edit(manifest)
    return zip_bytes(manifest, members)


def shape_bomb(data: bytes, shape=(10**12, 1000), manifest: str = "consistent") -> bytes:
    """user_factors with a .npy header declaring ``shape`` over a few bytes of data.

    ``manifest``: 'unchanged' (the header lies to the manifest), 'same' (the manifest says
    ``shape`` too) or 'consistent' (user_factors and item_factors both declare shape[1]
    factors, in headers and manifest, so the shapes agree with each other and only the
    members' sizes give the lie)."""
    man, members = read_members(data)
    spec = man["arrays"]["user_factors"]
    dtype = np.dtype(spec["dtype"])
    names = {"user_factors": tuple(shape)}
    if manifest == "consistent":
        k = int(shape[1])
        names = {"user_factors": (spec["shape"][0], k),
                 "item_factors": (man["arrays"]["item_factors"]["shape"][0], k)}
        man["arrays"].pop("unknown_user", None)
        members.pop("unknown_user.npy", None)
    for name, declared in names.items():
        members[f"{name}.npy"] = npy_header(declared, dtype) + bytes(64)
        if manifest != "unchanged":
            man["arrays"][name] = {"dtype": dtype.str, "shape": list(declared),
                                   "sha256": FAKE_SHA256}
    return zip_bytes(man, members)


def _zeros_deflate(header: bytes, total: int) -> bytes:
    """A raw deflate stream of ``header`` then zeros, ``total`` bytes in all, built from
    one compressed MiB repeated (each ends in a full flush, so equal input gives equal
    output): a GiB costs about a MiB and no time."""
    chunk = 1 << 20
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(header + bytes(chunk - len(header))) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(chunk)) + c.flush(zlib.Z_FULL_FLUSH)
    n_full, rest = divmod(total, chunk)
    return first + block * (n_full - 1) + c.compress(bytes(rest)) + c.flush()


def _zeros_crc(header: bytes, total: int) -> int:
    crc, chunk = zlib.crc32(header), bytes(1 << 20)
    left = total - len(header)
    while left > 0:
        crc = zlib.crc32(chunk[:left] if left < len(chunk) else chunk, crc)
        left -= len(chunk)
    return crc


def _patch_as_deflated(buffer: bytearray, name: str, crc: int, size: int) -> None:
    """Mark the stored member ``name`` (whose bytes are a raw deflate stream) as deflated,
    inflating to ``size`` bytes with ``crc``, in its local header and its central entry."""
    encoded = name.encode()
    pos = 0
    while (pos := buffer.find(b"PK\x01\x02", pos)) >= 0:
        name_len = struct.unpack_from("<H", buffer, pos + 28)[0]
        if bytes(buffer[pos + 46:pos + 46 + name_len]) == encoded:
            local = struct.unpack_from("<I", buffer, pos + 42)[0]
            struct.pack_into("<H", buffer, pos + 10, zipfile.ZIP_DEFLATED)
            struct.pack_into("<I", buffer, pos + 16, crc)
            struct.pack_into("<I", buffer, pos + 24, size)
            struct.pack_into("<H", buffer, local + 8, zipfile.ZIP_DEFLATED)
            struct.pack_into("<I", buffer, local + 14, crc)
            struct.pack_into("<I", buffer, local + 22, size)
            return
        pos += 4
    raise KeyError(name)


def deflate_bomb(data: bytes, size: int = 2 << 30, exact_crc: bool = False) -> bytes:
    """user_factors and item_factors as deflated members of zeros inflating to about
    ``size`` bytes each (under 4 GiB: no zip64), from about size / 1000 bytes of file;
    shapes, dtypes and the members' sizes agree with the manifest, so only the inflation
    gives it away. ``exact_crc`` computes the true CRC-32 (seconds per GiB); otherwise a
    loader that inflated it would fail only at the end."""
    man, members = read_members(data)
    man["arrays"].pop("unknown_user", None)
    members.pop("unknown_user.npy", None)
    dtype = np.dtype(man["arrays"]["user_factors"]["dtype"])
    n_users = man["arrays"]["user_factors"]["shape"][0]
    k = max(1, size // (dtype.itemsize * n_users))
    sizes = {}
    for name in ("user_factors", "item_factors"):
        shape = (man["arrays"][name]["shape"][0], k)
        header = npy_header(shape, dtype)
        total = len(header) + shape[0] * k * dtype.itemsize
        members[f"{name}.npy"] = _zeros_deflate(header, total)
        sizes[name] = (header, total)
        man["arrays"][name] = {"dtype": dtype.str, "shape": list(shape),
                               "sha256": FAKE_SHA256}
    buffer = bytearray(zip_bytes(man, members))
    for name, (header, total) in sizes.items():
        _patch_as_deflated(buffer, f"{name}.npy",
                           _zeros_crc(header, total) if exact_crc else 0, total)
    return bytes(buffer)


def duplicate_member(data: bytes, name: str = "user_factors.npy", blob=None) -> bytes:
    """A second member called ``name`` (zipfile would read the last): by default a copy of
    the first with its first value changed to its last, its checksum updated in the
    manifest (so the second copy is the one that agrees with it)."""
    manifest, members = read_members(data)
    if blob is None:
        array = np.load(io.BytesIO(members[name]), allow_pickle=False).copy()
        flat = array.reshape(-1)
        flat[:1] = flat[-1:]
        blob = npy(array)
        manifest["arrays"][name[:-4]]["sha256"] = digest(array)
    return zip_bytes(manifest, members, extra=[(name, blob)])


def extra_member(data: bytes, name: str = "extra.npy", blob: bytes | None = None) -> bytes:
    manifest, members = read_members(data)
    members[name] = npy(np.arange(3)) if blob is None else blob
    return zip_bytes(manifest, members)


def truncated_member(data: bytes, name: str = "item_factors.npy", keep: float = 0.5) -> bytes:
    """The member ``name`` cut to ``keep`` of its bytes (a whole, valid zip around it)."""
    manifest, members = read_members(data)
    members[name] = members[name][:int(len(members[name]) * keep)]
    return zip_bytes(manifest, members)


def deflated(data: bytes) -> bytes:
    """The same model file with every member deflated (as ``zip -9`` would): it loads."""
    manifest, members = read_members(data)
    methods = {name: zipfile.ZIP_DEFLATED for name in [MANIFEST, *members]}
    return zip_bytes(members[MANIFEST], members, methods)


#: Numbers a manifest may hold that no model has: (path of keys, value).
HUGE_NUMBERS = [
    (("arrays", "user_factors", "shape"), [10**400, 3]),
    (("arrays", "user_bias", "shape"), [2**63]),
    (("arrays", "item_ids", "shape"), [-1]),
    (("mu",), 10**400),
    (("mu",), float("nan")),
    (("rating_scale",), [1, float("inf")]),
    (("rating_scale",), [5, 1]),
    (("params", "n_factors"), 10**400),
    (("params", "lr"), 1e308 * 10),
    (("reg",), 10**400),
    (("fitted", "x"), 10**400),
    (("format_version",), 10**400),
    (("format_version",), True),
]


def set_path(manifest: dict, keys: tuple, value) -> None:
    target = manifest
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = value


#: Wrong dtypes for each member, with consistent manifest and checksum: (member, make(a)).
WRONG_DTYPES = [
    ("user_factors", lambda a: a.astype(np.float16)),
    ("user_factors", lambda a: a.astype(np.int32)),
    ("user_factors", lambda a: a.astype(np.complex64)),
    ("user_factors", lambda a: a.astype(a.dtype.newbyteorder(">"))),
    ("item_factors", lambda a: a.astype(np.float64 if a.dtype == np.float32 else np.float32)),
    ("user_bias", lambda a: a.astype(np.float64 if a.dtype == np.float32 else np.float32)),
    ("item_bias", lambda a: a.astype(np.int64)),
    ("user_ids", lambda a: a.astype(np.float64)),
    ("user_ids", lambda a: a.astype(np.int32)),
    ("user_ids", lambda a: a.astype(np.uint64)),
    ("user_ids", lambda a: a.astype("S")),
    ("item_ids", lambda a: a.astype(object)),
    ("item_ids", lambda a: a.astype("datetime64[s]")),
    ("item_ids", lambda a: np.array([(x, 0) for x in a], dtype=[("id", "<i8"), ("pad", "<i4")])),
    ("seen_indptr", lambda a: a.astype(np.int32)),
    ("seen_indptr", lambda a: a.astype(np.float64)),
    ("seen_indices", lambda a: a.astype(np.int64)),
    ("seen_indices", lambda a: a.astype(np.uint32)),
    ("title_items", lambda a: a.astype(np.float64)),
    ("title_texts", lambda a: a.astype("S")),
    ("title_texts", lambda a: np.zeros(len(a), dtype=np.int64)),
]


def structured_mutation(data: bytes, rng: np.random.Generator) -> bytes:
    """One of the hostile files above, chosen (and parametrized) by ``rng``; small."""
    manifest, members = read_members(data)
    arrays = [n[:-4] for n in members if n != MANIFEST]
    name = arrays[int(rng.integers(len(arrays)))]
    op = int(rng.integers(8))
    if op == 0:
        member, make = WRONG_DTYPES[int(rng.integers(len(WRONG_DTYPES)))]
        array = np.load(io.BytesIO(members[f"{member}.npy"]), allow_pickle=False)
        return with_arrays(data, {member: make(array)})
    if op == 1:
        return shape_bomb(data, (int(rng.integers(1, 10**6)), 10**int(rng.integers(3, 13))),
                          ("unchanged", "same", "consistent")[int(rng.integers(3))])
    if op == 2:
        return duplicate_member(data, f"{name}.npy")
    if op == 3:
        return truncated_member(data, f"{name}.npy", float(rng.random()))
    if op == 4:
        keys, value = HUGE_NUMBERS[int(rng.integers(len(HUGE_NUMBERS)))]
        return with_manifest(data, lambda m: set_path(m, keys, value))
    if op == 5:
        return extra_member(data, ("extra.npy", "../x.npy", "unknown_user.npy",
                                   "manifest.json.bak")[int(rng.integers(4))])
    if op == 6:  # a member's .npy header bytes disturbed, size and manifest unchanged
        blob = bytearray(members[f"{name}.npy"])
        pos = int(rng.integers(8, min(len(blob), 128)))
        blob[pos] = int(rng.integers(32, 127))
        members[f"{name}.npy"] = bytes(blob)
        return zip_bytes(manifest, members)
    array = np.load(io.BytesIO(members[f"{name}.npy"]), allow_pickle=False)
    if array.size:  # values out of what the format allows, checksum updated
        bad = array.copy()
        flat = bad.reshape(-1)
        flat[int(rng.integers(flat.size))] = (np.nan if bad.dtype.kind == "f" else
                                              flat[0] if bad.dtype.kind == "U" else -1)
        return with_arrays(data, {name: bad})
    return deflated(data)
