"""Model files: a FactorState and its manifest in one zip of .npy arrays plus
``manifest.json``.

The manifest holds the format version, the kind of model and its parameters, the fit
report (regularization used, per-epoch history, training summary), the lineage (parent
model, digests of the training data, recsys version), array shapes and dtypes and a
SHA-256 of every array, so a truncated, corrupted or foreign file is detected on load and
reported as ``ModelError``. Arrays are read with ``allow_pickle=False``: nothing in a
model file is ever unpickled. Writing is atomic. This module knows no estimator: it
reads and writes a ``ModelRecord`` (kind name, parameters, state, report).

Format versions: 1 held FunkSVD models only (SVD++ as ``method='svdpp'``, no lineage);
2 names the model kind and adds the lineage. Both are read.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import logging
import struct
import sys
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recsys.atomic import atomic_write
from recsys.data.ratings import IdMap
from recsys.errors import ModelError
from recsys.state import Factors, FactorState, FitReport, Lineage

#: What reading a damaged zip member can raise: bad headers claim unsupported compression
#: (NotImplementedError) or encryption (RuntimeError), bad data fails CRC or inflation.
_ZIP_ERRORS = (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError,
               ValueError, zlib.error, struct.error, UnicodeDecodeError)

log = logging.getLogger(__name__)
FORMAT = "recsys-funksvd"
FORMAT_VERSION = 2
_ARRAYS = ("user_factors", "item_factors", "user_bias", "item_bias", "user_ids", "item_ids",
           "seen_indptr", "seen_indices", "title_items", "title_texts")


@dataclass
class ModelRecord:
    """What a model file holds: the estimator's name and parameters, its state and report;
    ``manifest`` and ``format_version`` as read (a record being written has the current
    version)."""

    kind: str
    params: dict
    state: FactorState
    report: FitReport
    manifest: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _id_array(id_map: IdMap) -> np.ndarray:
    ids = id_map.ids
    return ids.astype(np.int64) if id_map.is_integer else ids.astype(str)


#: Kinds whose files must say the factor regularization they were trained with (files of
#: format 1 were all FunkSVD).
_TRAINED_WITH_REG = ("FunkSVD", "SVDpp", "HybridMF", None)
#: Members a file may lack (older files, or models without them).
_OPTIONAL = ("unknown_user",)


def state_arrays(state: FactorState) -> dict:
    """The arrays of a model file, by member name."""
    titles = state.item_titles or {}
    title_items = np.array(list(titles.keys())) if titles else np.zeros(0, dtype=np.int64)
    if title_items.dtype.kind == "O":
        title_items = title_items.astype(str)
    f = state.factors
    return {
        "user_factors": f.user_factors,
        "item_factors": f.item_factors,
        "user_bias": f.user_bias,
        "item_bias": f.item_bias,
        "user_ids": _id_array(state.user_map),
        "item_ids": _id_array(state.item_map),
        "seen_indptr": state.seen[0],
        "seen_indices": state.seen[1],
        "title_items": title_items,
        "title_texts": np.array(list(titles.values()), dtype=str) if titles
        else np.zeros(0, dtype="<U1"),
        **({} if state.unknown_user is None else {"unknown_user": state.unknown_user}),
    }


def write_model(path, record: ModelRecord) -> None:
    """Write ``record`` to ``path`` atomically."""
    state, report = record.state, record.report
    arrays = state_arrays(state)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": record.kind,
        "params": record.params,
        "reg": None if report.reg is None else float(report.reg),
        "reg_trials": [list(trial) for trial in report.reg_trials],
        "mu": float(state.factors.mu),
        "rating_scale": list(state.rating_scale),
        "training": report.summary,
        "history": report.history,
        "best_epoch": report.best_epoch,
        "fitted": report.fitted,
        "lineage": state.lineage.as_dict(),
        "arrays": {name: {"dtype": a.dtype.str, "shape": list(a.shape), "sha256": _digest(a)}
                   for name, a in arrays.items()},
    }
    log.info("writing %s model to %s", record.kind, path)
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


def read_model(path) -> ModelRecord:
    """Read a model file written by ``write_model`` (or format 1); raises ``ModelError``
    for anything amiss."""
    with _open_zip(path) as zf:
        manifest = _manifest(zf, path)
        specs = manifest.get("arrays", {})
        if not isinstance(specs, dict):
            raise ModelError(f"{path}: damaged model file: bad array list")
        missing = [n for n in _ARRAYS if n not in specs]
        if missing:
            raise ModelError(f"{path}: damaged model file: manifest lacks {', '.join(missing)}")
        arrays = {name: _read_array(zf, name, specs[name], path)
                  for name in (*_ARRAYS, *(n for n in _OPTIONAL if n in specs))}
    try:
        version = manifest["format_version"]
        params = manifest["params"]
        if not isinstance(params, dict):
            raise ValueError(f"bad parameters {params!r}")
        kind = manifest.get("model") if version >= 2 else \
            ("SVDpp" if params.get("method") == "svdpp" else "FunkSVD")
        if not isinstance(kind, str):
            raise ValueError(f"bad model kind {kind!r}")
        state = _state(arrays, manifest)
        state.check()
        reg, trials = _trained_reg(manifest)
        best = manifest.get("best_epoch")
        fitted = manifest.get("fitted", {})
        if not isinstance(fitted, dict) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in fitted.values()):
            raise ValueError(f"bad fitted values {fitted!r}")
        report = FitReport(reg, trials, list(manifest.get("history", [])),
                           best if isinstance(best, int) else None,
                           dict(manifest.get("training", {})), dict(fitted))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: damaged model file: {exc}") from None
    return ModelRecord(kind, params, state, report, manifest, version)


def _state(arrays: dict, manifest: dict) -> FactorState:
    P = arrays["user_factors"]
    if P.ndim != 2 or P.dtype.kind != "f":
        raise ValueError("array shapes disagree with each other")
    for name in ("user_ids", "item_ids", "title_items"):
        if arrays[name].dtype.kind not in "iU":
            raise ValueError(f"array {name} holds {arrays[name].dtype} values, not ids")
    factors = Factors(P.dtype.type(manifest["mu"]), arrays["user_bias"], arrays["item_bias"], P,
                      arrays["item_factors"])
    titles = {k.item() if hasattr(k, "item") else k: str(v) for k, v in
              zip(arrays["title_items"], arrays["title_texts"], strict=False)}
    return FactorState(factors, IdMap(arrays["user_ids"]), IdMap(arrays["item_ids"]),
                       (arrays["seen_indptr"], arrays["seen_indices"]),
                       tuple(float(x) for x in manifest["rating_scale"]), titles,
                       Lineage.from_dict(manifest.get("lineage")), arrays.get("unknown_user"))


def _trained_reg(manifest: dict) -> tuple[float, list]:
    """The γ the model was trained with: ``reg`` in the manifest, else (files written before
    ``reg='auto'`` existed) the numeric parameter."""
    def number(x) -> bool:  # a finite float (a huge JSON integer is not: float() overflows)
        return isinstance(x, (int, float)) and not isinstance(x, bool) \
            and abs(x) <= sys.float_info.max

    reg = manifest.get("reg", manifest["params"].get("reg"))
    if reg is None and manifest.get("model") not in _TRAINED_WITH_REG:
        pass  # a model without a chosen factor regularization (baselines, ranking)
    elif not (number(reg) and reg >= 0):
        raise ValueError(f"bad regularization {reg!r}")
    trials = manifest.get("reg_trials", [])
    if not (isinstance(trials, list) and all(
            isinstance(t, list) and len(t) == 2 and all(map(number, t)) for t in trials)):
        raise ValueError(f"bad reg_trials {trials!r}")
    return (None if reg is None else float(reg)), [(float(r), float(e)) for r, e in trials]
