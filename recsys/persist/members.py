"""The members of a model file, checked before use: the zip's entries, each array's
declared dtype and shape (against what the format allows and against each other), each
member's size in the zip (against its declared array, and the inflation of compressed
members), then each .npy header and its data, read into an array of the declared size and
hashed as it is read. So a hostile file fails with ``ModelError`` before anything is
allocated beyond what its (consistent) arrays need.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from recsys.errors import ModelError
from recsys.memory import human_bytes

#: What reading a damaged zip member can raise: bad headers claim unsupported compression
#: (NotImplementedError) or encryption (RuntimeError), bad data fails CRC or inflation.
ZIP_ERRORS = (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError,
               ValueError, zlib.error, struct.error, UnicodeDecodeError)

ARRAYS = ("user_factors", "item_factors", "user_bias", "item_bias", "user_ids", "item_ids",
           "seen_indptr", "seen_indices", "title_items", "title_texts")
MANIFEST = "manifest.json"

#: What each array may be: the kind of its dtype and its number of dimensions. Factors and
#: biases are little-endian float32 or float64 (one dtype for all); ids int64 or text
#: (numpy unicode, '<U'); the seen-items index int64 offsets and int32 item indices.
#: Object, structured, complex, datetime, big-endian and other dtypes are refused.
_LAYOUT = {
    "user_factors": ("float", 2), "item_factors": ("float", 2),
    "user_bias": ("float", 1), "item_bias": ("float", 1), "unknown_user": ("float", 1),
    "user_ids": ("id", 1), "item_ids": ("id", 1), "title_items": ("id", 1),
    "title_texts": ("text", 1), "seen_indptr": ("<i8", 1), "seen_indices": ("<i4", 1),
}
_KIND_TEXT = {"float": "float32 or float64 (little-endian)", "id": "int64 or text ids",
              "text": "text", "<i8": "int64", "<i4": "int32"}
_FLOATS = ("<f4", "<f8")
_TEXT = re.compile(r"<U[1-9][0-9]{0,5}")  # up to 999,999 characters
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: The largest size of one dimension a manifest may declare (2^40: far beyond any model,
#: and small enough that sizes stay exact).
_MAX_DIM = 1 << 40
#: The largest manifest read (recsys writes a few KiB; long histories stay far below).
MANIFEST_LIMIT = 16 << 20
#: The largest .npy header read (numpy's own limit), and the most a member may hold beyond
#: its array's data: the magic string, the header length and the header.
_NPY_HEADER_LIMIT = 10_000
_NPY_HEADER_MAX = 12 + _NPY_HEADER_LIMIT
#: A deflate-compressed member (recsys stores members uncompressed; a file zipped again
#: may compress them) may inflate to at most MAX_INFLATION times its compressed size, or
#: to INFLATION_FLOOR, whichever is more: factors deflate about 1.1x, ids and text well
#: under 100x, a bomb of zeros about 1000x.
MAX_INFLATION = 100
INFLATION_FLOOR = 16 << 20
CHUNK = 1 << 20  # bytes read (and hashed) at a time


def damaged(path, what: str) -> ModelError:
    return ModelError(f"{path}: damaged model file: {what}")


def zip_members(zf: zipfile.ZipFile, path) -> dict:
    """{name: ZipInfo} of the members, refusing duplicate names (zipfile would silently
    keep the last), encrypted members and compression other than stored (what recsys
    writes) or deflate. Which members belong is checked against the manifest
    (``array_specs``)."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        name = info.filename
        if name in members:
            raise damaged(path, f"member {name!r} appears more than once")
        if info.flag_bits & 0x1:
            raise damaged(path, f"member {name} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise damaged(path, f"member {name} uses compression method "
                                 f"{info.compress_type} (stored or deflate only)")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise damaged(path, f"member {name} is stored with {info.compress_size} bytes "
                                 f"but claims {info.file_size}")
        members[name] = info
    return members



@dataclass(frozen=True)
class _Spec:
    """One array as the manifest declares it, checked against what the format allows."""

    name: str
    dtype: np.dtype
    shape: tuple
    sha256: str

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def _describe(dtype) -> str:
    try:
        return f"{np.dtype(dtype).name} ({dtype})"
    except (TypeError, ValueError, SyntaxError):
        return repr(dtype)[:40]


def _allowed(kind: str, dtype) -> bool:
    if not isinstance(dtype, str):
        return False
    if kind == "float":
        return dtype in _FLOATS
    if kind == "id":
        return dtype == "<i8" or _TEXT.fullmatch(dtype) is not None
    if kind == "text":
        return _TEXT.fullmatch(dtype) is not None
    return dtype == kind


def _spec(name: str, raw, path) -> _Spec:
    kind, ndim = _LAYOUT[name]
    if not isinstance(raw, dict):
        raise damaged(path, f"bad manifest entry for array {name}")
    dtype, shape, digest = raw.get("dtype"), raw.get("shape"), raw.get("sha256")
    if not _allowed(kind, dtype):
        raise damaged(path, f"array {name} is declared as {_describe(dtype)}; model files "
                             f"hold {_KIND_TEXT[kind]} there")
    if not (isinstance(shape, list) and len(shape) == ndim and all(
            isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= _MAX_DIM
            for n in shape)):
        raise damaged(path, f"array {name} has a bad shape {str(shape)[:80]} in the "
                             f"manifest ({ndim}-D, sizes from 0 to {_MAX_DIM:,})")
    if not (isinstance(digest, str) and _SHA256.fullmatch(digest)):
        raise damaged(path, f"array {name} has a bad checksum in the manifest")
    return _Spec(name, np.dtype(dtype), tuple(shape), digest)


def array_specs(manifest: dict, members: dict, path) -> dict:
    """The checked specs of the arrays, by name: every required one present, nothing
    unknown, each with its member, and shapes and dtypes that fit together, all before any
    array data is read."""
    raw = manifest.get("arrays", {})
    if not isinstance(raw, dict):
        raise damaged(path, "bad array list")
    missing = [n for n in ARRAYS if n not in raw]
    if missing:
        raise damaged(path, f"manifest lacks {', '.join(missing)}")
    unknown = [str(n)[:40] for n in raw if n not in _LAYOUT]
    if unknown:
        raise damaged(path, f"manifest lists unknown arrays {', '.join(unknown)}")
    specs = {name: _spec(name, raw[name], path) for name in raw}
    for name in specs:
        if f"{name}.npy" not in members:
            raise damaged(path, f"array {name} is missing")
    for member in members:
        if member != MANIFEST and not (member.endswith(".npy") and member[:-4] in specs):
            raise damaged(path, f"unexpected member {member[:80]!r} (a model file holds "
                                f"{MANIFEST} and the arrays it lists)")
    _check_declared_shapes(specs, path)
    return specs


def _check_declared_shapes(specs: dict, path) -> None:
    """The manifest's shapes and dtypes agree with each other (checked again on the arrays
    read, by ``FactorState.check``); so no array is read whose size the others do not
    vouch for."""
    n_users, n_items = specs["user_ids"].shape[0], specs["item_ids"].shape[0]
    k = specs["item_factors"].shape[1]
    need = {"user_factors": (n_users, k), "item_factors": (n_items, k),
            "user_bias": (n_users,), "item_bias": (n_items,), "seen_indptr": (n_users + 1,),
            "unknown_user": (k,), "title_texts": specs["title_items"].shape}
    for name, shape in need.items():
        if name in specs and specs[name].shape != shape:
            raise damaged(path, f"array shapes disagree with each other: {name} is "
                                 f"{list(specs[name].shape)} where {n_users} user ids, "
                                 f"{n_items} item ids and {k} factors need {list(shape)}")
    dtype = specs["user_factors"].dtype
    for name in ("item_factors", "user_bias", "item_bias", "unknown_user"):
        if name in specs and specs[name].dtype != dtype:
            raise damaged(path, f"array dtypes disagree with each other: {name} is "
                                 f"{specs[name].dtype.name}, user_factors {dtype.name}")


def check_sizes(specs: dict, members: dict, path) -> int:
    """Refuse members whose size in the zip does not fit their declared array (a header
    claiming more than is there, a compression bomb); returns the bytes the arrays need."""
    total = 0
    for name, spec in specs.items():
        info = members[f"{name}.npy"]
        need = spec.nbytes
        if not need <= info.file_size <= need + _NPY_HEADER_MAX:
            raise damaged(path, f"array {name}: its member holds {info.file_size:,} bytes "
                                 f"where shape {list(spec.shape)} {spec.dtype.str} needs "
                                 f"{need:,} and a header")
        if info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > max(
                INFLATION_FLOOR, MAX_INFLATION * info.compress_size):
            raise damaged(path, f"member {name}.npy would inflate "
                                 f"{info.file_size / max(info.compress_size, 1):,.0f}x "
                                 f"({human_bytes(info.compress_size)} to "
                                 f"{human_bytes(info.file_size)}; at most {MAX_INFLATION}x "
                                 f"beyond {human_bytes(INFLATION_FLOOR)})")
        total += need
    return total


def read_array(zf, info: zipfile.ZipInfo, spec: _Spec, path) -> np.ndarray:
    """One array: its .npy header checked against the manifest and the member's size
    before any data is read, then the data read into an array of the declared size, hashed
    as it comes."""
    name = spec.name
    try:
        with zf.open(info) as fh:
            shape, fortran, dtype, start = _npy_header(fh, name, path)
            if dtype.str != spec.dtype.str or shape != spec.shape:
                raise damaged(path, f"array {name} has shape {list(shape)} {dtype.str}, "
                                     f"manifest says {list(spec.shape)} {spec.dtype.str}")
            data_bytes = info.file_size - start
            if data_bytes != spec.nbytes:
                raise damaged(path, f"array {name}: its member holds {data_bytes:,} bytes "
                                     f"of data where its header declares {spec.nbytes:,}")
            flat = np.empty(math.prod(shape), dtype=dtype)
            view = memoryview(flat.view(np.uint8)) if flat.size else memoryview(b"")
            digest = hashlib.sha256()
            pos = 0
            while pos < spec.nbytes:
                got = fh.readinto(view[pos:pos + CHUNK])
                if not got:
                    raise damaged(path, f"array {name} is truncated")
                if not fortran:
                    digest.update(view[pos:pos + got])
                pos += got
            if fh.read(1):
                raise damaged(path, f"array {name} has data beyond its declared size")
    except ZIP_ERRORS as exc:
        raise damaged(path, f"array {name} unreadable ({exc})") from None
    if fortran and len(shape) > 1:
        array = np.ascontiguousarray(flat.reshape(shape[::-1]).T)
        digest.update(memoryview(array.reshape(-1).view(np.uint8)) if array.size else b"")
    else:
        array = flat.reshape(shape)
    if digest.hexdigest() != spec.sha256:
        raise damaged(path, f"checksum of array {name} does not match")
    return array


def _npy_header(fh, name: str, path) -> tuple:
    """(shape, fortran_order, dtype, offset of the data) of a .npy stream. The header's
    length is checked before it is read (numpy would read what the length field claims,
    then check it)."""
    start = fh.read(8)
    if len(start) < 8 or start[:6] != b"\x93NUMPY":
        raise damaged(path, f"array {name} has a bad .npy header (no .npy magic string)")
    version = (start[6], start[7])
    if version not in ((1, 0), (2, 0)):
        raise damaged(path, f"array {name} is in .npy format {version[0]}.{version[1]} "
                            "(1.0 or 2.0 only)")
    length_field = fh.read(2 if version == (1, 0) else 4)
    length = int.from_bytes(length_field, "little")
    if len(length_field) not in (2, 4) or length > _NPY_HEADER_LIMIT:
        raise damaged(path, f"array {name} has a bad .npy header (claims {length:,} bytes, "
                            f"at most {_NPY_HEADER_LIMIT:,})")
    header = fh.read(length)
    reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
              else np.lib.format.read_array_header_2_0)
    try:
        shape, fortran, dtype = reader(io.BytesIO(length_field + header),
                                       max_header_size=_NPY_HEADER_LIMIT)
    except Exception as exc:  # noqa: BLE001 - numpy's parser of 10 kB raises many kinds
        raise damaged(path, f"array {name} has a bad .npy header ({str(exc)[:200]})") \
            from None
    return tuple(shape), bool(fortran), dtype, 8 + len(length_field) + len(header)


