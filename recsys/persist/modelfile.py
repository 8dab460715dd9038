"""Saving and loading fitted models: one zip file of .npy arrays plus ``manifest.json``.

The manifest holds the format version, parameters, training summary, array shapes and
dtypes and a SHA-256 of every array, so a truncated, corrupted or foreign file is
detected on load and reported as ``ModelError``. Arrays are read with
``allow_pickle=False``: nothing in a model file is ever unpickled. Writing is atomic.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np

from recsys.atomic import atomic_write
from recsys.data.ratings import IdMap
from recsys.errors import ModelError

#: What reading a damaged zip member can raise: bad headers claim unsupported compression
#: (NotImplementedError) or encryption (RuntimeError), bad data fails CRC or inflation.
_ZIP_ERRORS = (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError,
               ValueError, zlib.error, struct.error, UnicodeDecodeError)

FORMAT = "recsys-funksvd"
FORMAT_VERSION = 1
_ARRAYS = ("user_factors", "item_factors", "user_bias", "item_bias", "user_ids", "item_ids",
           "seen_indptr", "seen_indices", "title_items", "title_texts")


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _id_array(id_map: IdMap) -> np.ndarray:
    ids = id_map.ids
    return ids.astype(np.int64) if id_map.is_integer else ids.astype(str)


def model_arrays(model) -> dict:
    titles = getattr(model, "item_titles_", {}) or {}
    title_items = np.array(list(titles.keys())) if titles else np.zeros(0, dtype=np.int64)
    if title_items.dtype.kind == "O":
        title_items = title_items.astype(str)
    return {
        "user_factors": model.user_factors_,
        "item_factors": model.item_factors_,
        "user_bias": model.user_bias_,
        "item_bias": model.item_bias_,
        "user_ids": _id_array(model.user_map_),
        "item_ids": _id_array(model.item_map_),
        "seen_indptr": model.seen_[0],
        "seen_indices": model.seen_[1],
        "title_items": title_items,
        "title_texts": np.array(list(titles.values()), dtype=str) if titles
        else np.zeros(0, dtype="<U1"),
    }


def save(model, path) -> None:
    """Write a fitted model to ``path`` atomically."""
    model._require_fitted()
    arrays = model_arrays(model)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "params": model.get_params(),
        "reg": float(model.reg_),
        "reg_trials": [list(trial) for trial in getattr(model, "reg_trials_", [])],
        "mu": float(model.mu_),
        "rating_scale": list(model.rating_scale_),
        "training": getattr(model, "train_summary_", {}),
        "history": getattr(model, "history_", []),
        "arrays": {name: {"dtype": a.dtype.str, "shape": list(a.shape), "sha256": _digest(a)}
                   for name, a in arrays.items()},
    }
    with atomic_write(path, "wb") as fh:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr("manifest.json", json.dumps(manifest, indent=1, default=_json_default))
            for name, array in arrays.items():
                buffer = io.BytesIO()
                np.save(buffer, array, allow_pickle=False)
                zf.writestr(f"{name}.npy", buffer.getvalue())


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a model manifest")


def read_manifest(path) -> dict:
    """The manifest of a model file (checked), without loading its arrays."""
    with _open_zip(path) as zf:
        return _manifest(zf, path)


def _open_zip(path) -> zipfile.ZipFile:
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: model file not found")
    if path.is_dir():
        raise ModelError(f"{path}: is a folder, not a model file")
    try:
        return zipfile.ZipFile(path, "r")
    except PermissionError:
        raise ModelError(f"{path}: permission denied") from None
    except _ZIP_ERRORS:
        raise ModelError(f"{path}: not a recsys model file (not a zip archive, or truncated)") \
            from None


def _manifest(zf: zipfile.ZipFile, path) -> dict:
    try:
        manifest = json.loads(zf.read("manifest.json").decode("utf-8"))
    except KeyError:
        raise ModelError(f"{path}: not a recsys model file (no manifest)") from None
    except _ZIP_ERRORS as exc:  # json.JSONDecodeError is a ValueError
        raise ModelError(f"{path}: damaged model file: manifest unreadable ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelError(f"{path}: not a recsys model file (format is "
                         f"{manifest.get('format') if isinstance(manifest, dict) else '?'!r})")
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise ModelError(f"{path}: damaged model file: bad format version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelError(f"{path}: model format version {version} is newer than this recsys "
                         f"reads (up to {FORMAT_VERSION}); upgrade recsys")
    return manifest


def _read_array(zf, name, spec, path) -> np.ndarray:
    try:
        raw = zf.read(f"{name}.npy")
        array = np.load(io.BytesIO(raw), allow_pickle=False)
    except KeyError:
        raise ModelError(f"{path}: damaged model file: array {name} is missing") from None
    except _ZIP_ERRORS as exc:
        raise ModelError(f"{path}: damaged model file: array {name} unreadable ({exc})") \
            from None
    if array.dtype.str != spec.get("dtype") or list(array.shape) != spec.get("shape"):
        raise ModelError(f"{path}: damaged model file: array {name} has shape "
                         f"{list(array.shape)} {array.dtype.str}, manifest says "
                         f"{spec.get('shape')} {spec.get('dtype')}")
    if _digest(array) != spec.get("sha256"):
        raise ModelError(f"{path}: damaged model file: checksum of array {name} does not match")
    return array


def load(path):
    """Read a model written by ``save``; raises ``ModelError`` for anything amiss."""
    from recsys.models.funksvd import FunkSVD

    with _open_zip(path) as zf:
        manifest = _manifest(zf, path)
        specs = manifest.get("arrays", {})
        missing = [n for n in _ARRAYS if n not in specs]
        if missing:
            raise ModelError(f"{path}: damaged model file: manifest lacks {', '.join(missing)}")
        arrays = {name: _read_array(zf, name, specs[name], path) for name in _ARRAYS}
    try:
        model = FunkSVD(**manifest["params"])
        _check_consistent(arrays, path)
        model.user_factors_ = arrays["user_factors"]
        model.item_factors_ = arrays["item_factors"]
        model.user_bias_ = arrays["user_bias"]
        model.item_bias_ = arrays["item_bias"]
        model.mu_ = model.user_factors_.dtype.type(manifest["mu"])
        model.user_map_ = IdMap(arrays["user_ids"])
        model.item_map_ = IdMap(arrays["item_ids"])
        model.seen_ = (arrays["seen_indptr"], arrays["seen_indices"])
        model.rating_scale_ = tuple(float(x) for x in manifest["rating_scale"])
        model.history_ = list(manifest.get("history", []))
        model.train_summary_ = dict(manifest.get("training", {}))
        model.item_titles_ = {k.item() if hasattr(k, "item") else k: str(v) for k, v in
                              zip(arrays["title_items"], arrays["title_texts"])}
        model.reg_, model.reg_trials_ = _trained_reg(manifest)
        model.manifest_ = manifest
    except ModelError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: damaged model file: {exc}") from None
    return model


def _trained_reg(manifest: dict) -> tuple[float, list]:
    """The γ the model was trained with: ``reg`` in the manifest, else (files written before
    ``reg='auto'`` existed) the numeric parameter."""
    def number(x) -> bool:  # a finite float (a huge JSON integer is not: float() overflows)
        return isinstance(x, (int, float)) and not isinstance(x, bool) \
            and abs(x) <= sys.float_info.max

    reg = manifest.get("reg", manifest["params"].get("reg"))
    if not (number(reg) and reg >= 0):
        raise ValueError(f"bad regularization {reg!r}")
    trials = manifest.get("reg_trials", [])
    if not (isinstance(trials, list) and all(
            isinstance(t, list) and len(t) == 2 and all(map(number, t)) for t in trials)):
        raise ValueError(f"bad reg_trials {trials!r}")
    return float(reg), [(float(r), float(e)) for r, e in trials]


def _check_consistent(a: dict, path) -> None:
    n_users, k = a["user_factors"].shape if a["user_factors"].ndim == 2 else (-1, -1)
    n_items = a["item_factors"].shape[0] if a["item_factors"].ndim == 2 else -1
    ok = (
        n_users >= 0 and n_items >= 0
        and a["item_factors"].shape[1] == k
        and a["user_bias"].shape == (n_users,) and a["item_bias"].shape == (n_items,)
        and a["user_ids"].shape == (n_users,) and a["item_ids"].shape == (n_items,)
        and a["seen_indptr"].shape == (n_users + 1,)
        and a["user_factors"].dtype == a["item_factors"].dtype
    )
    if ok:
        ptr = a["seen_indptr"]
        ok = (ptr[0] == 0 and ptr[-1] == len(a["seen_indices"]) and bool(np.all(np.diff(ptr) >= 0))
              and (len(a["seen_indices"]) == 0 or (a["seen_indices"].min() >= 0
                                                   and a["seen_indices"].max() < n_items)))
    if not ok:
        raise ModelError(f"{path}: damaged model file: array shapes disagree with each other")
